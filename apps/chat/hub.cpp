#include "hub.hpp"

#include <cstdlib>
#include <vector>

#include <unistd.h>

#include <channels/log.hpp>

namespace chat {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

channels::Message presence_notice(std::string_view event, const std::string& id, const std::string& name) {
  return {{"type", "chat.message"},
          {"message", name + (event == "join" ? " joined" : " left")},
          {"event", event},
          {"member", {{"id", id}, {"name", name}}},
          {"time", now_ms()}};
}

Hub::Hub() : Hub(make_memory_store()) {}

Hub::Hub(std::shared_ptr<Store> store, std::string server_id)
    : store_(std::move(store)), server_id_(std::move(server_id)) {}

Hub::~Hub() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  store_.reset();  // finishes its queue while layer_ is still there
}

std::shared_ptr<Hub> Hub::fallback() {
  static auto hub = std::make_shared<Hub>();
  return hub;
}

void Hub::start(const channels::Config& config, std::shared_ptr<channels::ChannelLayer> layer) {
  if (const char* id = std::getenv("CHAT_SERVER_ID"); id && *id) {
    server_id_ = id;
  } else {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    server_id_ = std::string(host) + ":" + std::to_string(config.server.port);
  }
  if (config.channel_layer.backend != "memory") {
    std::string url = config.channel_layer.hosts.empty() ? "redis://localhost:6379" : config.channel_layer.hosts.front();
    store_ = make_redis_store(url, config.channel_layer.prefix + ":chat");
    channels::log().info("chat: history and presence in Redis at {} (server id {})", url, server_id_);
  }
  start_heartbeat(std::move(layer), std::chrono::milliseconds(presence_ttl / 3));
}

void Hub::start_heartbeat(std::shared_ptr<channels::ChannelLayer> layer, std::chrono::milliseconds interval) {
  layer_ = std::move(layer);
  heartbeat_ = std::thread([this, interval] {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
      lock.unlock();
      beat(*layer_);
      lock.lock();
    }
  });
}

void Hub::beat(channels::ChannelLayer& layer) {
  std::vector<Member> mine;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [conn, m] : members_) mine.push_back(m);
  }
  if (!mine.empty()) store_->touch(mine, presence_ttl, {});
  // Whoever removes an expired member (one process only) tells its room.
  store_->reap([&layer](std::error_code ec, Json gone) {
    if (ec) return;
    for (const auto& g : gone) {
      std::string room = g["room"];
      channels::log().info("chat: {} ({}) in room {} timed out", g["name"].get<std::string>(),
                           g["id"].get<std::string>(), room);
      layer.group_send("chat_" + room, presence_notice("leave", g["id"].get<std::string>(), g["name"].get<std::string>()));
    }
  });
}

void Hub::joined(const Member& m) {
  std::lock_guard lock(mutex_);
  members_[m.conn] = m;
}

void Hub::left(const Member& m) {
  std::lock_guard lock(mutex_);
  members_.erase(m.conn);
}

}  // namespace chat
