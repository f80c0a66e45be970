#pragma once
// Hub: what every chat connection of one process shares. The store (history
// and presence), this server's id (sent in each hello, so a client or a test
// can tell which process it reached) and the heartbeat that keeps this
// process' members online in the store and says goodbye for members of
// processes that died.

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <channels/config.hpp>
#include <channels/layer.hpp>

#include "limits.hpp"
#include "store.hpp"

namespace chat {

class Hub {
 public:
  /// A process' hub on a memory store, with no heartbeat until start().
  Hub();
  explicit Hub(std::shared_ptr<Store> store, std::string server_id = "local");
  ~Hub();  // stops the heartbeat, then lets the store finish what is queued
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  /// For channels::run's start hook: a Redis store on the layer's first host
  /// when the layer is Redis (every process then shares history and
  /// presence), the memory store otherwise; then the heartbeat.
  void start(const channels::Config& config, std::shared_ptr<channels::ChannelLayer> layer);
  /// Touches this process' members every `interval` and reaps expired ones,
  /// announcing each in its room through `layer`.
  void start_heartbeat(std::shared_ptr<channels::ChannelLayer> layer, std::chrono::milliseconds interval);

  Store& store() { return *store_; }
  const std::string& server_id() const { return server_id_; }
  Limits limits;
  /// How long a member stays online without a heartbeat.
  std::chrono::milliseconds presence_ttl{15'000};

  /// This process' members, touched by the heartbeat.
  void joined(const Member& m);
  void left(const Member& m);

  /// The hub of consumers made without one (tests, the plain registry).
  static std::shared_ptr<Hub> fallback();

 private:
  void beat(channels::ChannelLayer& layer);

  std::shared_ptr<channels::ChannelLayer> layer_;  // outlives the store's last replies
  std::shared_ptr<Store> store_;
  std::string server_id_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Member> members_;  // by connection
  bool stopping_ = false;
  std::thread heartbeat_;
};

/// The notice a room gets when someone joins or leaves: a chat.message (so
/// clients of the plain tutorial protocol show it as a line too) with
/// "event" and "member".
channels::Message presence_notice(std::string_view event, const std::string& id, const std::string& name);

std::int64_t now_ms();

}  // namespace chat
