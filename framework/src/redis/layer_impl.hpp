#pragma once
// The Redis layer's insides (see channels/layers/redis.hpp for what it does).
// Everything that touches Redis runs on the layer's own I/O thread; callers
// only post to it, serialize messages on their own thread, and read or
// write the local channel table under a mutex.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <channels/layers/redis.hpp>

#include "connection.hpp"
#include "fernet.hpp"
#include "redis_url.hpp"

namespace channels::detail {

class RedisLayerImpl {
 public:
  explicit RedisLayerImpl(RedisLayerOptions options);
  ~RedisLayerImpl();
  /// Starts the I/O thread and the command connections.
  static void start(const std::shared_ptr<RedisLayerImpl>& self);
  /// Flushes what is in flight (bounded), closes, ends the thread.
  void shutdown();

  std::string new_channel(std::string_view prefix);
  void send(std::string_view channel, const Message& msg, ChannelLayer::Completion done);
  void group_add(std::string_view group, std::string_view channel, ChannelLayer::Completion done);
  void group_discard(std::string_view group, std::string_view channel, ChannelLayer::Completion done);
  void group_send(std::string_view group, const Message& msg, ChannelLayer::GroupCompletion done);
  std::shared_ptr<Inbox> attach(std::string_view channel);
  void detach(std::string_view channel);
  MessagePtr receive_nowait(std::string_view channel);
  LayerStats stats() const;
  RedisLayerStats redis_stats() const;
  bool connected() const;

  const RedisLayerOptions options;
  const std::string client_prefix;

 private:
  class ReceiveLoop;
  friend class ReceiveLoop;
  using Conn = std::shared_ptr<redis::Connection>;
  /// How storing one member ended: stored, the key was at capacity, or Redis
  /// could not be reached.
  enum class Stored { ok, full, unavailable };

  // ---- on the I/O thread ----
  void post(std::function<void()> fn);
  double next_score();
  std::int64_t trim_below(std::int64_t age_seconds);
  std::size_t capacity_of(std::string_view channel) const;
  std::size_t host_of(std::string_view channel);
  void store(std::size_t host, const std::string& key, std::size_t capacity, std::string member,
             std::function<void(Stored)> done);
  void listen(const std::string& name);
  void stop_listening(const std::string& name);
  void deliver(std::string_view member, const std::string& key, const std::string& normal_channel);
  void on_command_up(std::size_t host, bool recovered);
  void announce_reconnected();
  void note_full(std::string_view where, std::size_t n);
  void note_unavailable(std::string_view what, std::string_view where, std::size_t n);

  // ---- under mutex_, from any thread ----
  std::shared_ptr<Inbox> local_locked(const std::string& channel);
  void check_message(const Message& msg) const;
  bool ensure_listening(const std::string& name);

  std::vector<redis::Endpoint> endpoints_;
  std::unique_ptr<redis::MultiFernet> crypter_;
  std::int64_t expiry_s_ = 60, group_expiry_s_ = 86400;

  boost::asio::io_context ioc_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};

  // I/O thread only.
  std::vector<Conn> commands_;  // one per host
  std::map<std::string, std::vector<std::shared_ptr<ReceiveLoop>>> loops_;  // by non-local name
  std::map<std::string, std::set<std::string>> memberships_;  // this process' group_adds, for reconnects
  double last_score_ = 0;
  std::size_t send_cycle_ = 0;

  mutable std::mutex mutex_;
  struct Local {
    std::shared_ptr<Inbox> inbox;
    bool attached = false;
  };
  std::unordered_map<std::string, Local> locals_;  // channels this process reads
  std::set<std::string> listening_;                // non-local names with receive loops
  std::uint64_t dropped_expired_gone_ = 0;         // by inboxes detached since

  std::atomic<int> connections_total_{0};
  std::atomic<int> connections_up_{0};
  std::atomic<std::uint64_t> sent_{0}, dropped_full_{0}, dropped_no_channel_{0};
  std::atomic<std::uint64_t> received_{0}, malformed_{0}, unavailable_{0}, reconnects_{0};
};

}  // namespace channels::detail
