#pragma once
// The default layer: groups and channels inside this process, no server to
// run. Like Channels' InMemoryChannelLayer, it cannot reach other processes.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <channels/layer.hpp>

namespace channels {

class InMemoryChannelLayer final : public ChannelLayer {
 public:
  using Clock = std::function<Inbox::Clock::time_point()>;

  explicit InMemoryChannelLayer(LayerOptions options = {}, Clock clock = {});

  std::string new_channel(std::string_view prefix = "specific") override;
  void send(std::string_view channel, Message msg, Completion done = {}) override;
  void group_add(std::string_view group, std::string_view channel, Completion done = {}) override;
  void group_discard(std::string_view group, std::string_view channel, Completion done = {}) override;
  void group_send(std::string_view group, Message msg, GroupCompletion done = {}) override;
  std::shared_ptr<Inbox> attach(std::string_view channel) override;
  void detach(std::string_view channel) override;
  MessagePtr receive_nowait(std::string_view channel) override;
  LayerStats stats() const override;
  const LayerOptions& options() const override { return options_; }

  /// Members of a group right now (expired memberships removed first).
  std::size_t group_size(std::string_view group);
  /// Channels with a queue (attached, or holding unread messages).
  std::size_t channel_count() const;

 private:
  struct Channel {
    std::shared_ptr<Inbox> inbox;
    bool attached = false;
    // The groups it joined, so leaving them all costs O(its groups), not
    // O(all groups): a disconnect must not slow down with the server's size.
    std::unordered_set<std::string> groups;
  };
  struct Member {
    std::shared_ptr<Inbox> inbox;
    Inbox::Clock::time_point added;
  };
  using Group = std::unordered_map<std::string, Member>;

  Inbox::Clock::time_point now() const;
  std::shared_ptr<Inbox> channel_locked(const std::string& name);
  void sweep_locked(Inbox::Clock::time_point now);
  void remove_from_groups_locked(const std::string& name, Channel& channel);
  void note_drop_locked(std::string_view where, std::size_t n);

  const LayerOptions options_;
  const Clock clock_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Channel> channels_;
  // The channels with a queue that nobody attached (sent to, or joined to a
  // group, from elsewhere): the only ones the sweep visits, so that its cost
  // follows them rather than every connection's channel.
  std::unordered_set<std::string> unattached_;
  std::unordered_map<std::string, Group> groups_;
  Inbox::Clock::time_point last_sweep_{};
  Inbox::Clock::time_point last_group_sweep_{};
  LayerStats stats_;
};

}  // namespace channels
