// RedisPubSubChannelLayer against a real redis-server: channels_redis'
// pub/sub format (PUBLISH on the channel or "asgi__group__<g>", bare
// msgpack), nothing stored in Redis, subscriptions renewed after a restart.

#include <channels/layers/redis_pubsub.hpp>

#include <future>

#include <gtest/gtest.h>

#include "../net/test_server.hpp"
#include "consumers.hpp"
#include "redis_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::RedisServer;

namespace {

std::shared_ptr<RedisPubSubChannelLayer> make(const RedisServer& redis) {
  RedisLayerOptions o;
  o.hosts = {redis.url()};
  o.retry_min = 20ms;
  o.retry_max = 200ms;
  auto l = std::make_shared<RedisPubSubChannelLayer>(o);
  EXPECT_TRUE(eventually([&] { return l->connected(); }));
  return l;
}

MessagePtr receive(ChannelLayer& layer, const std::string& channel) {
  MessagePtr m;
  eventually([&] { return bool(m = layer.receive_nowait(channel)); });
  return m;
}

// Subscriptions take effect asynchronously (as in channels_redis): wait
// until Redis counts `n` subscribed processes.
bool subscribers(RedisServer& redis, const std::string& channel, long long n) {
  return eventually([&] {
    auto r = redis.command({"PUBSUB", "NUMSUB", channel});
    return r.items.size() == 2 && r.items[1] == std::to_string(n);
  });
}

GroupSendResult group_sent(ChannelLayer& layer, const std::string& group, Message m) {
  auto p = std::make_shared<std::promise<GroupSendResult>>();
  layer.group_send(group, std::move(m), [p](GroupSendResult r) { p->set_value(r); });
  auto f = p->get_future();
  EXPECT_EQ(f.wait_for(5s), std::future_status::ready);
  return f.get();
}

}  // namespace

TEST(RedisPubSub, ChannelsAndGroupsAcrossTwoProcessesStoreNothing) {
  RedisServer redis;
  auto a = make(redis), b = make(redis);
  auto b1 = b->new_channel(), b2 = b->new_channel(), a1 = a->new_channel();
  EXPECT_EQ(b1.rfind("asgispecific.", 0), 0u);  // channels_redis: prefix + "specific." + uuid hex
  EXPECT_EQ(b1.size(), std::string("asgispecific.").size() + 32);
  ASSERT_TRUE(subscribers(redis, b1, 1));
  a->send(b1, {{"type", "direct"}, {"b", Json::binary({0, 1})}});
  auto m = receive(*b, b1);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (Message{{"type", "direct"}, {"b", Json::binary({0, 1})}}));

  for (const auto& ch : {b1, b2}) b->group_add("room", ch);
  a->group_add("room", a1);
  ASSERT_TRUE(subscribers(redis, "asgi__group__room", 2));
  auto r = group_sent(*a, "room", {{"type", "chat.message"}, {"message", "hi"}});
  EXPECT_EQ(r.delivered, 2u);  // two processes
  auto m1 = receive(*b, b1), m2 = receive(*b, b2), m3 = receive(*a, a1);
  ASSERT_TRUE(m1 && m2 && m3);
  EXPECT_EQ(m1.get(), m2.get());  // decoded once for both local members
  EXPECT_EQ((*m3)["message"], "hi");
  EXPECT_EQ(redis.command({"DBSIZE"}).integer, 0);  // nothing stored

  // The last local member leaving unsubscribes the process.
  b->group_discard("room", b1);
  b->group_discard("room", b2);
  ASSERT_TRUE(subscribers(redis, "asgi__group__room", 1));
  EXPECT_THROW(b->group_add("room", "asgispecific.notmine"), std::invalid_argument);
}

TEST(RedisPubSub, RestartRenewsSubscriptionsAndTellsConsumers) {
  RedisServer redis;
  auto a = make(redis), b = make(redis);
  auto ch = b->new_channel();
  auto inbox = b->attach(ch);
  b->group_add("live", ch);
  ASSERT_TRUE(subscribers(redis, "asgi__group__live", 1));
  redis.stop();
  redis.start();
  ASSERT_TRUE(subscribers(redis, "asgi__group__live", 1));
  ASSERT_TRUE(subscribers(redis, ch, 1));
  ASSERT_TRUE(eventually([&] { return a->connected(); }));
  a->group_send("live", {{"type", "after"}});
  std::vector<std::string> types;
  ASSERT_TRUE(eventually([&] {
    for (auto& m : inbox->take_all(Inbox::Clock::now(), 60s)) types.emplace_back(message_type(*m));
    return std::find(types.begin(), types.end(), "after") != types.end();
  }));
  EXPECT_NE(std::find(types.begin(), types.end(), "layer.reconnected"), types.end());
}

TEST(RedisPubSub, ChatOnTwoServers) {
  RedisServer redis;
  Registry reg;
  chat::register_consumers(reg);
  auto c = load_config(std::filesystem::path(CHANNELS_SOURCE_DIR) / "routing.yaml", reg);
  testing_support::TestServer sa(c.application, testing_support::TestServer::defaults(), make(redis));
  testing_support::TestServer sb(c.application, testing_support::TestServer::defaults(), make(redis));
  WebsocketClient x, y;
  ASSERT_TRUE(x.connect(sa.url("/ws/chat/pub/")).accepted);
  ASSERT_TRUE(y.connect(sb.url("/ws/chat/pub/")).accepted);
  ASSERT_TRUE(subscribers(redis, "asgi__group__chat_pub", 2));
  y.send(R"({"message": "across"})");
  for (auto* cl : {&x, &y}) {
    auto m = cl->receive(5s);
    ASSERT_TRUE(m);
    EXPECT_EQ(Json::parse(m->data), (Json{{"message", "across"}}));
  }
}

TEST(RedisPubSub, GroupAddCompletesOnceRedisConfirmsTheSubscription) {
  RedisServer redis;
  auto a = make(redis);
  auto ch = a->new_channel();
  auto inbox = a->attach(ch);
  for (int i = 0; i < 5; ++i) {
    std::string group = "confirmed" + std::to_string(i);
    auto p = std::make_shared<std::promise<std::error_code>>();
    a->group_add(group, ch, [p](std::error_code ec) { p->set_value(ec); });
    auto f = p->get_future();
    ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
    EXPECT_FALSE(f.get());
    // No waiting: Redis already counts this process as a subscriber.
    auto r = redis.command({"PUBSUB", "NUMSUB", "asgi__group__" + group});
    ASSERT_EQ(r.items.size(), 2u);
    EXPECT_EQ(r.items[1], "1");
  }
  a->detach(ch);
}

TEST(RedisPubSub, ASilentRedisTimesOutTheListeningConnectionToo) {
  RedisServer redis;
  RedisLayerOptions o;
  o.hosts = {redis.url()};
  o.retry_min = 20ms;
  o.retry_max = 200ms;
  o.command_timeout = 300ms;
  o.connect_timeout = 300ms;
  auto a = std::make_shared<RedisPubSubChannelLayer>(o);
  ASSERT_TRUE(eventually([&] { return a->connected(); }));
  auto ch = a->new_channel();
  auto inbox = a->attach(ch);
  ASSERT_TRUE(subscribers(redis, ch, 1));
  // Redis stops answering every client for 2 s: the SUBSCRIBE gets no
  // confirmation, which must fail the group_add in about command_timeout,
  // not hang until Redis answers.
  EXPECT_EQ(redis.command({"CLIENT", "PAUSE", "2000", "ALL"}).str, "OK");
  auto p = std::make_shared<std::promise<std::error_code>>();
  auto start = std::chrono::steady_clock::now();
  a->group_add("paused", ch, [p](std::error_code ec) { p->set_value(ec); });
  auto f = p->get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get(), LayerError::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  // Once Redis answers again, the listening connection is back with every
  // subscription (the group's too) and the consumer was told.
  ASSERT_TRUE(subscribers(redis, "asgi__group__paused", 1));
  ASSERT_TRUE(eventually([&] { return a->connected(); }, 10s));
  EXPECT_EQ(group_sent(*a, "paused", {{"type", "after"}}).delivered, 1u);
  std::vector<std::string> types;
  ASSERT_TRUE(eventually([&] {
    for (auto& m : inbox->take_all(Inbox::Clock::now(), 60s)) types.emplace_back(message_type(*m));
    return std::find(types.begin(), types.end(), "after") != types.end();
  }, 5s));
  EXPECT_NE(std::find(types.begin(), types.end(), "layer.reconnected"), types.end());
  a->detach(ch);
}
