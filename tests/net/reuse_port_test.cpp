// server.reuse_port: several servers (processes, in production) listen on
// one port and the kernel spreads connections over them; one that leaves
// takes only its own connections, and the port keeps answering.

#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "test_server.hpp"

using namespace channels;
using testing_support::eventually;

namespace {

struct Echo : WebsocketConsumer {
  void on_receive(std::string_view text) override { send(text); }
};

ApplicationPtr echo_app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("ws/echo/", as_app<Echo>())})}});
}

ServerOptions on_port(std::uint16_t port, bool reuse_port) {
  auto o = testing_support::TestServer::defaults();
  o.port = port;
  o.reuse_port = reuse_port;
  o.drain_timeout = std::chrono::milliseconds(500);  // the blocking clients read no close frame
  return o;
}

std::string url(std::uint16_t port) { return "ws://127.0.0.1:" + std::to_string(port) + "/ws/echo/"; }

}  // namespace

TEST(ReusePort, TwoServersShareAPortAndWhenOneLeavesTheOtherKeepsAnswering) {
  auto a = std::make_unique<Server>(on_port(0, true), echo_app(), std::make_shared<InMemoryChannelLayer>());
  a->start();
  const auto port = a->port();
  Server b(on_port(port, true), echo_app(), std::make_shared<InMemoryChannelLayer>());
  b.start();

  // Connections from different source ports hash to either listener: with
  // 40 of them, all on one side would be a 1 in 2^39 chance.
  std::vector<std::unique_ptr<WebsocketClient>> clients;
  for (int i = 0; i < 40; ++i) {
    clients.push_back(std::make_unique<WebsocketClient>());
    ASSERT_TRUE(clients.back()->connect(url(port)).accepted) << "connection " << i;
    clients.back()->send("hello " + std::to_string(i));
    auto reply = clients.back()->receive();
    ASSERT_TRUE(reply) << "connection " << i;
    EXPECT_EQ(reply->data, "hello " + std::to_string(i));
  }
  ASSERT_TRUE(eventually([&] { return a->stats().websockets_open + b.stats().websockets_open == 40; }));
  EXPECT_GT(a->stats().websockets_open, 0u);
  EXPECT_GT(b.stats().websockets_open, 0u);

  // One leaves (a restart, a crash): only its connections close.
  auto a_had = a->stats().websockets_open;
  a->shutdown();
  a.reset();
  int open = 0;
  for (auto& c : clients) {
    try {
      c->send("still there?");
      auto reply = c->receive(std::chrono::seconds(2));
      if (reply && reply->data == "still there?") ++open;
    } catch (const std::exception&) {
      // closed with 1001 by the server that left
    }
  }
  EXPECT_EQ(open, static_cast<int>(40 - a_had));

  // New connections all reach the one that stayed.
  for (int i = 0; i < 10; ++i) {
    WebsocketClient c;
    ASSERT_TRUE(c.connect(url(port)).accepted) << "after the first left, connection " << i;
    c.send("again");
    auto reply = c.receive();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->data, "again");
  }
}

TEST(ReusePort, WithoutItASecondServerOnThePortFailsToStartAndSaysWhatToDo) {
  Server a(on_port(0, false), echo_app(), std::make_shared<InMemoryChannelLayer>());
  a.start();
  Server b(on_port(a.port(), true), echo_app(), std::make_shared<InMemoryChannelLayer>());
  try {
    b.start();
    FAIL() << "a second server bound a port the first holds without reuse_port";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("--reuse-port"), std::string::npos) << e.what();
  }
  // The first is unharmed.
  WebsocketClient c;
  ASSERT_TRUE(c.connect(url(a.port())).accepted);
}
