// The chat app on two in-process servers sharing one Redis: like two
// daphne/cppchannels processes behind a load balancer, every client of a
// room gets every message whichever server it is connected to.

#include <thread>

#include <gtest/gtest.h>

#include "../net/room_burst.hpp"
#include "../net/test_server.hpp"
#include "consumers.hpp"
#include "redis_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::burst_in_sender_order;
using testing_support::eventually;
using testing_support::RedisServer;
using testing_support::TestServer;

namespace {

struct TwoServers : ::testing::Test {
  RedisServer redis;
  std::unique_ptr<TestServer> a, b;

  static Config config() {
    Registry r;
    chat::register_consumers(r);
    return load_config(std::filesystem::path(CHANNELS_SOURCE_DIR) / "routing.yaml", r);
  }

  std::shared_ptr<RedisChannelLayer> layer(std::size_t capacity = 100) {
    RedisLayerOptions o;
    o.hosts = {redis.url()};
    o.layer.capacity = capacity;
    o.retry_min = 20ms;
    o.retry_max = 200ms;
    return std::make_shared<RedisChannelLayer>(o);
  }

  void start(std::size_t capacity = 100) {
    auto c = config();
    auto o = TestServer::defaults();
    a = std::make_unique<TestServer>(c.application, o, layer(capacity));
    b = std::make_unique<TestServer>(c.application, o, layer(capacity));
  }
  void SetUp() override { start(); }

  // group_add travels to Redis after the handshake; wait until it is there.
  bool members(const std::string& group, long long n) {
    return eventually([&] { return redis.command({"ZCARD", "asgi:group:" + group}).integer == n; });
  }
};

Json next_json(WebsocketClient& c) {
  auto m = c.receive(5s);
  if (!m) return Json();
  return Json::parse(m->data);
}

}  // namespace

TEST_F(TwoServers, ClientsOfBothServersInOneRoomGetEveryMessage) {
  WebsocketClient a1, a2, b1, elsewhere;
  ASSERT_TRUE(a1.connect(a->url("/ws/chat/lobby/")).accepted);
  ASSERT_TRUE(a2.connect(a->url("/ws/chat/lobby/")).accepted);
  ASSERT_TRUE(b1.connect(b->url("/ws/chat/lobby/")).accepted);
  ASSERT_TRUE(elsewhere.connect(b->url("/ws/chat/other/")).accepted);
  ASSERT_TRUE(members("chat_lobby", 3));
  a1.send(R"({"message": "from a"})");
  for (auto* c : {&a1, &a2, &b1}) EXPECT_EQ(next_json(*c), (Json{{"message", "from a"}}));
  b1.send(R"({"message": "from b \u00e9"})");
  for (auto* c : {&a1, &a2, &b1}) EXPECT_EQ(next_json(*c), (Json{{"message", "from b \u00e9"}}));
  EXPECT_FALSE(elsewhere.receive(300ms));
  // Leaving the room removes the membership from Redis.
  a2.close();
  ASSERT_TRUE(members("chat_lobby", 2));
}

TEST_F(TwoServers, BurstFromEveryClientArrivesEverywhereInSenderOrder) {
  // channels_redis' capacity counts what waits for a whole process (one key
  // per process); a burst of 200 needs more than the default 100.
  a.reset();
  b.reset();
  start(2000);
  constexpr int per_server = 4, per_client = 25, clients = 2 * per_server;
  std::vector<WebsocketClient> ws(clients);
  for (int i = 0; i < clients; ++i)
    ASSERT_TRUE(ws[i].connect((i < per_server ? a : b)->url("/room/burst/")).accepted);
  ASSERT_TRUE(members("burst", clients));
  EXPECT_EQ(burst_in_sender_order(ws, per_client, 10s), std::vector<std::string>{});
  EXPECT_EQ(a->server.channel_layer().stats().dropped_full, 0u);
  EXPECT_EQ(b->server.channel_layer().stats().dropped_full, 0u);
}

TEST_F(TwoServers, RedisRestartLeavesClientsConnectedAndTheRoomWorking) {
  WebsocketClient a1, b1;
  ASSERT_TRUE(a1.connect(a->url("/ws/chat/phoenix/")).accepted);
  ASSERT_TRUE(b1.connect(b->url("/ws/chat/phoenix/")).accepted);
  ASSERT_TRUE(members("chat_phoenix", 2));
  redis.stop();
  redis.start();
  // Each server puts its consumers' memberships back by itself.
  ASSERT_TRUE(members("chat_phoenix", 2));
  auto& la = static_cast<RedisChannelLayer&>(a->server.channel_layer());
  auto& lb = static_cast<RedisChannelLayer&>(b->server.channel_layer());
  ASSERT_TRUE(eventually([&] { return la.connected() && lb.connected(); }));
  // The chat consumer has no handler for layer.reconnected: it is logged
  // and the connection stays up.
  b1.send(R"({"message": "still here"})");
  EXPECT_EQ(next_json(a1), (Json{{"message", "still here"}}));
  EXPECT_EQ(next_json(b1), (Json{{"message", "still here"}}));
  EXPECT_TRUE(a1.is_open());
  EXPECT_TRUE(b1.is_open());
}

namespace {

// Does what Channels' consumers do with `await group_add(...)`: accepts only
// once the membership is stored, and refuses if it could not be.
struct JoinsThenAccepts : WebsocketConsumer {
  void on_connect() override {
    group_add("joined", [this](std::error_code ec) {
      EXPECT_TRUE(on_strand());
      if (ec)
        close();
      else
        accept();
    });
  }
};

ApplicationPtr joins_app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("join/", as_app<JoinsThenAccepts>())})}});
}

std::shared_ptr<RedisChannelLayer> quick_layer(const RedisServer& redis) {
  RedisLayerOptions o;
  o.hosts = {redis.url()};
  o.retry_min = 20ms;
  o.retry_max = 200ms;
  o.connect_timeout = 500ms;
  return std::make_shared<RedisChannelLayer>(o);
}

}  // namespace

TEST(RedisGroupAddCompletion, AcceptedOnlyOnceRedisHoldsTheMembership) {
  RedisServer redis;
  auto layer = quick_layer(redis);
  TestServer s(joins_app(), TestServer::defaults(), layer);
  std::vector<std::unique_ptr<WebsocketClient>> clients;
  for (int i = 1; i <= 10; ++i) {
    clients.push_back(std::make_unique<WebsocketClient>());
    ASSERT_TRUE(clients.back()->connect(s.url("/join/")).accepted);
    // No waiting here: the handshake finished after Redis had the member.
    EXPECT_EQ(redis.command({"ZCARD", "asgi:group:joined"}).integer, i);
  }
}

TEST(RedisGroupAddCompletion, ReportsAMembershipRedisCouldNotStore) {
  RedisServer redis;
  auto layer = quick_layer(redis);
  ASSERT_TRUE(eventually([&] { return layer->connected(); }));
  redis.stop();
  ASSERT_TRUE(eventually([&] { return !layer->connected(); }));
  TestServer s(joins_app(), TestServer::defaults(), layer);
  WebsocketClient c;
  EXPECT_FALSE(c.connect(s.url("/join/")).accepted);  // the consumer refused: Redis is down
  redis.start();
  ASSERT_TRUE(eventually([&] { return layer->connected(); }));
  WebsocketClient d;
  EXPECT_TRUE(d.connect(s.url("/join/")).accepted);
}
