// An embedded server: it runs on an io_context that the test owns and runs
// on its own threads, next to other Asio work, and stops without stopping
// it; and two servers in one process, each with its own port and layer.

#include <atomic>
#include <future>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;

namespace {

namespace net = boost::asio;

// Echoes "echo: TEXT"; "all: TEXT" goes to every member of the room.
struct Room : AsyncWebsocketConsumer {
  Room() { handle("room.message", &Room::room_message); }
  awaitable<void> connect() override {
    co_await group_add("room");
    accept();
  }
  awaitable<void> receive(std::string text) override {
    if (text.rfind("all: ", 0) == 0) {
      Message event = {{"type", "room.message"}, {"text", text.substr(5)}};
      co_await group_send("room", std::move(event));
    } else {
      co_await send("echo: " + text);
    }
  }
  awaitable<void> room_message(const Message& m) { co_await send(m["text"].get<std::string>()); }
};

ApplicationPtr room_app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("ws/room/", as_app<Room>())})}});
}

ServerOptions loopback() {
  ServerOptions o;
  o.bind = "127.0.0.1";
  o.port = 0;
  o.threads = 0;  // ignored when embedded: the test's threads run everything
  return o;
}

std::string url(const Server& s) { return "ws://127.0.0.1:" + std::to_string(s.port()) + "/ws/room/"; }

// The host: an io_context on two threads of the test's own, with a timer
// ticking every 5 ms (the "other Asio work").
struct Host {
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
  net::steady_timer timer{ioc};
  std::atomic<int> ticks{0};
  std::vector<std::thread> threads;

  Host() {
    tick();
    for (int i = 0; i < 2; ++i) threads.emplace_back([this] { ioc.run(); });
  }
  ~Host() {
    work.reset();
    ioc.stop();
    for (auto& t : threads) t.join();
  }
  void tick() {
    timer.expires_after(5ms);
    timer.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      ++ticks;
      tick();
    });
  }
  std::set<std::thread::id> ids() const {
    std::set<std::thread::id> s;
    for (auto& t : threads) s.insert(t.get_id());
    return s;
  }
};

}  // namespace

TEST(Embed, ServesOnTheHostsIoContextAndStopsWithoutStoppingIt) {
  Host host;
  Server server(host.ioc, loopback(), room_app(), std::make_shared<InMemoryChannelLayer>());
  server.start();
  ASSERT_NE(server.port(), 0);

  WebsocketClient a, b;
  ASSERT_TRUE(a.connect(url(server)).accepted);
  ASSERT_TRUE(b.connect(url(server)).accepted);
  a.send("hi");
  auto echo = a.receive(5s);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->data, "echo: hi");
  a.send("all: hello room");
  auto to_a = a.receive(5s), to_b = b.receive(5s);
  ASSERT_TRUE(to_a && to_b);
  EXPECT_EQ(to_a->data, "hello room");
  EXPECT_EQ(to_b->data, "hello room");
  EXPECT_EQ(server.stats().websockets_open, 2u);

  // From a thread that is not running the io_context (nor the clients, who
  // must answer the close frames).
  std::thread stopper([&] { server.shutdown(); });
  EXPECT_FALSE(a.receive(5s));
  EXPECT_FALSE(b.receive(5s));
  stopper.join();
  EXPECT_EQ(a.close_code(), 1001);
  EXPECT_EQ(b.close_code(), 1001);
  EXPECT_EQ(server.stats().websockets_open, 0u);

  // The host's io_context is still running: the timer keeps firing.
  EXPECT_FALSE(host.ioc.stopped());
  int before = host.ticks;
  EXPECT_TRUE(eventually([&] { return host.ticks >= before + 3; }, 5s));
  // No more connections.
  WebsocketClient c;
  EXPECT_FALSE(c.connect(url(server)).accepted);
}

TEST(Embed, AsyncShutdownCompletesOnTheHostsIoContext) {
  Host host;
  auto server = std::make_unique<Server>(host.ioc, loopback(), room_app(), std::make_shared<InMemoryChannelLayer>());
  server->start();
  WebsocketClient a;
  ASSERT_TRUE(a.connect(url(*server)).accepted);

  std::promise<std::thread::id> done;
  auto finished = done.get_future();
  server->async_shutdown([&] { done.set_value(std::this_thread::get_id()); });
  EXPECT_FALSE(a.receive(5s));
  EXPECT_EQ(a.close_code(), 1001);
  ASSERT_EQ(finished.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(host.ids().count(finished.get()));  // ran on one of the host's threads

  // Once completed, the server may go while the io_context runs on.
  server.reset();
  int before = host.ticks;
  EXPECT_TRUE(eventually([&] { return host.ticks >= before + 3; }, 5s));
  EXPECT_FALSE(host.ioc.stopped());

  // With use_future, as any Asio operation.
  Server other(host.ioc, loopback(), room_app(), std::make_shared<InMemoryChannelLayer>());
  other.start();
  auto f = other.async_shutdown(net::use_future);
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
}

TEST(Embed, WaitOnTheHostsThreadIsRefused) {
  Host host;
  Server server(host.ioc, loopback(), room_app(), std::make_shared<InMemoryChannelLayer>());
  server.start();
  std::promise<bool> refused;
  net::post(host.ioc, [&] {
    try {
      server.wait();
      refused.set_value(false);
    } catch (const std::logic_error&) {
      refused.set_value(true);
    }
  });
  EXPECT_TRUE(refused.get_future().get());
  EXPECT_THROW(server.run(), std::logic_error);
  server.shutdown();
}

TEST(Embed, DestroyedAfterTheHostStoppedItsIoContext) {
  // The host stops its io_context with a connection still open: the server's
  // destructor closes it (1001) instead of leaving handlers that refer to it.
  auto host = std::make_unique<Host>();
  auto server = std::make_unique<Server>(host->ioc, loopback(), room_app(), std::make_shared<InMemoryChannelLayer>());
  server->start();
  WebsocketClient a;
  ASSERT_TRUE(a.connect(url(*server)).accepted);
  host->work.reset();
  host->ioc.stop();
  for (auto& t : host->threads) t.join();
  host->threads.clear();
  std::thread closer([&] { server.reset(); });
  EXPECT_FALSE(a.receive(5s));
  EXPECT_EQ(a.close_code(), 1001);
  closer.join();
  EXPECT_TRUE(host->ioc.stopped());  // left as the host left it
}

TEST(Embed, TwoServersInOneProcessKeepTheirGroupsApart) {
  // One on the host's io_context, one with its own threads; each with its
  // own in-memory layer and port.
  Host host;
  auto layer_one = std::make_shared<InMemoryChannelLayer>();
  auto layer_two = std::make_shared<InMemoryChannelLayer>();
  Server one(host.ioc, loopback(), room_app(), layer_one);
  auto owned = loopback();
  owned.threads = 2;
  Server two(owned, room_app(), layer_two);
  one.start();
  two.start();
  ASSERT_NE(one.port(), two.port());
  EXPECT_EQ(&one.channel_layer(), layer_one.get());
  EXPECT_EQ(&two.channel_layer(), layer_two.get());

  WebsocketClient a1, b1, a2;
  ASSERT_TRUE(a1.connect(url(one)).accepted);
  ASSERT_TRUE(b1.connect(url(one)).accepted);
  ASSERT_TRUE(a2.connect(url(two)).accepted);

  a1.send("all: for one");
  auto r1 = b1.receive(5s);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->data, "for one");
  ASSERT_TRUE(a1.receive(5s));
  // Same group name, other server, other layer: nothing arrives there.
  EXPECT_FALSE(a2.receive(300ms));
  EXPECT_TRUE(a2.is_open());

  a2.send("all: for two");
  auto r2 = a2.receive(5s);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->data, "for two");
  EXPECT_FALSE(a1.receive(300ms));
  EXPECT_FALSE(b1.receive(300ms));
  EXPECT_TRUE(a1.is_open() && b1.is_open());
  EXPECT_EQ(one.stats().websockets_open, 2u);
  EXPECT_EQ(two.stats().websockets_open, 1u);

  // Stopping one leaves the other serving.
  std::thread stopper([&] { one.shutdown(); });
  EXPECT_FALSE(a1.receive(5s));
  EXPECT_FALSE(b1.receive(5s));
  stopper.join();
  EXPECT_EQ(a1.close_code(), 1001);
  EXPECT_EQ(b1.close_code(), 1001);
  a2.send("still here");
  auto r3 = a2.receive(5s);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->data, "echo: still here");
  stopper = std::thread([&] { two.shutdown(); });
  EXPECT_FALSE(a2.receive(5s));
  stopper.join();
  EXPECT_EQ(a2.close_code(), 1001);
  EXPECT_FALSE(host.ioc.stopped());
}
