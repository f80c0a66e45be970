#pragma once
// Coroutine consumers shared by the communicator tests and the socket tests:
// each one exercises one promise of AsyncWebsocketConsumer.

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <channels/channels.hpp>

namespace async_test {

using channels::awaitable;
using channels::Json;
using channels::Message;
namespace net = boost::asio;

struct Record {
  std::mutex m;
  std::vector<int> disconnects;
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  void disconnected(int code) {
    std::lock_guard l(m);
    disconnects.push_back(code);
  }
  std::vector<int> codes() {
    std::lock_guard l(m);
    return disconnects;
  }
};
inline Record* record = nullptr;

inline awaitable<void> sleep_for(std::chrono::milliseconds d) {
  net::steady_timer t(co_await net::this_coro::executor, d);
  co_await t.async_wait(net::use_awaitable);
}

// The Channels tutorial's chat, every step awaited.
struct Chat : channels::AsyncJsonWebsocketConsumer {
  Chat() { handle("chat.message", &Chat::chat_message); }
  awaitable<void> connect() override {
    group_ = "chat_" + scope().kwarg("room_name");
    co_await sleep_for(std::chrono::milliseconds(20));  // as if checking a database
    co_await group_add(group_);
    accept();
  }
  awaitable<void> receive_json(Json content) override {
    // (A braced message as a co_await argument trips GCC 12: build it first.)
    Message msg = {{"type", "chat.message"}, {"message", content["message"]}};
    auto r = co_await group_send(group_, std::move(msg));
    if (r.delivered == 0) throw std::logic_error("group_send reached no member, not even the sender");
  }
  awaitable<void> chat_message(const Message& m) {
    Json out = {{"message", m["message"]}};
    co_await send_json(std::move(out));
  }
  awaitable<void> disconnect(int code) override {
    co_await group_discard(group_);
    if (record) record->disconnected(code);
  }
  std::string group_;
};

// "slow..." frames wait before answering; nothing else may start meanwhile.
struct Ordered : channels::AsyncWebsocketConsumer {
  Ordered() {
    handle("ping.slow", &Ordered::ping_slow);
    handle("ping.fast", &Ordered::ping_fast);
  }
  awaitable<void> receive(std::string text) override {
    enter();
    if (text == "layer") {
      // Two layer messages to ourselves: the slow one's handler must finish
      // before the fast one's starts.
      Message slow = {{"type", "ping.slow"}}, fast = {{"type", "ping.fast"}};
      co_await channel_send(channel_name(), std::move(slow));
      co_await channel_send(channel_name(), std::move(fast));
    } else if (text.starts_with("slow")) {
      co_await sleep_for(std::chrono::milliseconds(100));
    }
    leave();
    if (text != "layer") co_await send(text + " done");
  }
  awaitable<void> ping_slow(const Message&) {
    enter();
    co_await sleep_for(std::chrono::milliseconds(100));
    leave();
    co_await send("slow handled");
  }
  awaitable<void> ping_fast(const Message&) {
    enter();
    leave();
    co_await send("fast handled");
  }
  awaitable<void> disconnect(int code) override {
    if (record) record->disconnected(code);
    co_return;
  }
  static void enter() {
    if (!record) return;
    int n = ++record->in_flight;
    int m = record->max_in_flight.load();
    while (n > m && !record->max_in_flight.compare_exchange_weak(m, n)) {
    }
  }
  static void leave() {
    if (record) --record->in_flight;
  }
};

// "boom" throws after a suspension; later frames must not run.
struct Thrower : channels::AsyncWebsocketConsumer {
  awaitable<void> receive(std::string text) override {
    co_await sleep_for(std::chrono::milliseconds(10));
    if (text == "boom") throw std::runtime_error("bug in a coroutine handler");
    co_await send("ran: " + text);
  }
  awaitable<void> disconnect(int code) override {
    if (record) record->disconnected(code);
    co_return;
  }
};

struct ThrowsInConnect : channels::AsyncWebsocketConsumer {
  awaitable<void> connect() override {
    co_await sleep_for(std::chrono::milliseconds(10));
    throw std::runtime_error("cannot connect");
  }
};

// run_blocking: the call runs on another thread; the coroutine comes back to
// the strand. "sleep" waits on a timer, "block" in the pool, anything else
// is echoed at once.
struct Blocking : channels::AsyncJsonWebsocketConsumer {
  awaitable<void> receive_json(Json content) override {
    std::string cmd = content.value("cmd", "");
    auto strand_thread = std::this_thread::get_id();
    if (cmd == "block") {
      auto pool_thread = co_await channels::run_blocking([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        return std::this_thread::get_id();
      });
      Json out = {{"cmd", cmd},
                  {"ran_elsewhere", pool_thread != strand_thread},
                  {"on_strand", executor().running_in_this_thread()}};
      co_await send_json(std::move(out));
    } else if (cmd == "sleep") {
      co_await sleep_for(std::chrono::milliseconds(300));
      Json out = {{"cmd", cmd}, {"on_strand", executor().running_in_this_thread()}};
      co_await send_json(std::move(out));
    } else if (cmd == "fail") {
      co_await channels::run_blocking([]() -> int { throw std::runtime_error("database is down"); });
      co_await send("unreachable");
    } else {
      Json out = {{"cmd", cmd}};
      co_await send_json(std::move(out));
    }
  }
};

inline channels::ApplicationPtr app() {
  using namespace channels;
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{
                        path("chat/<str:room_name>/", as_app<Chat>()),
                        path("ordered/", as_app<Ordered>()),
                        path("throw/", as_app<Thrower>()),
                        path("throw-connect/", as_app<ThrowsInConnect>()),
                        path("blocking/", as_app<Blocking>()),
                    })},
  });
}

}  // namespace async_test
