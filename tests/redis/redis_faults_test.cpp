// The Redis layer when Redis misbehaves: down at start-up, restarted under
// traffic, too slow to answer. Each against a real redis-server.

#include <channels/layers/redis.hpp>

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "../net/test_server.hpp"
#include "redis_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::RedisServer;

namespace {

RedisLayerOptions quick_retries(std::uint16_t port) {
  RedisLayerOptions o;
  o.hosts = {"redis://127.0.0.1:" + std::to_string(port)};
  o.retry_min = 20ms;
  o.retry_max = 200ms;
  o.command_timeout = 1s;
  o.connect_timeout = 1s;
  return o;
}

template <class T>
T wait_for(std::future<T> f, std::chrono::milliseconds timeout = 10s) {
  if (f.wait_for(timeout) != std::future_status::ready) throw std::runtime_error("no completion in time");
  return f.get();
}

std::error_code send_and_wait(ChannelLayer& layer, const std::string& channel, Message m) {
  auto p = std::make_shared<std::promise<std::error_code>>();
  layer.send(channel, std::move(m), [p](std::error_code ec) { p->set_value(ec); });
  return wait_for(p->get_future());
}

// Every message an attached inbox got so far.
std::vector<MessagePtr> drain(Inbox& inbox) { return inbox.take_all(Inbox::Clock::now(), 60s); }

bool has_type(const std::vector<MessagePtr>& ms, std::string_view type) {
  for (auto& m : ms)
    if (message_type(*m) == type) return true;
  return false;
}

}  // namespace

TEST(RedisFaults, DownAtStartupThenUpRestoresGroupsAndTellsConsumers) {
  RedisServer redis(testing_support::free_loopback_port());  // not started yet
  auto layer = std::make_shared<RedisChannelLayer>(quick_retries(redis.port()));
  EXPECT_FALSE(layer->connected());
  auto ch = layer->new_channel();
  auto inbox = layer->attach(ch);
  // Nothing blocks; errors come back through completions.
  EXPECT_EQ(send_and_wait(*layer, ch, {{"type", "lost"}}), LayerError::unavailable);
  auto p = std::make_shared<std::promise<std::error_code>>();
  layer->group_add("early", ch, [p](std::error_code ec) { p->set_value(ec); });
  EXPECT_EQ(wait_for(p->get_future()), LayerError::unavailable);
  auto g = std::make_shared<std::promise<GroupSendResult>>();
  layer->group_send("early", {{"type", "lost.too"}}, [g](GroupSendResult r) { g->set_value(r); });
  EXPECT_EQ(wait_for(g->get_future()).delivered, 0u);
  EXPECT_GE(layer->redis_stats().dropped_unavailable, 2u);

  redis.start();
  ASSERT_TRUE(eventually([&] { return layer->connected(); }, 10s));
  // The membership asked for while Redis was down is there now.
  ASSERT_TRUE(eventually([&] {
    return redis.command({"ZRANGE", "asgi:group:early", "0", "-1"}).items == std::vector<std::string>{ch};
  }));
  ASSERT_TRUE(eventually([&] { return inbox->size() > 0; }));
  auto got = drain(*inbox);
  EXPECT_TRUE(has_type(got, "layer.reconnected"));
  EXPECT_FALSE(has_type(got, "lost"));
  // And it works.
  auto other = std::make_shared<RedisChannelLayer>(quick_retries(redis.port()));
  ASSERT_TRUE(eventually([&] { return other->connected(); }));
  other->group_send("early", {{"type", "hello"}});
  ASSERT_TRUE(eventually([&] { return inbox->size() > 0; }));
  EXPECT_TRUE(has_type(drain(*inbox), "hello"));
}

TEST(RedisFaults, RestartDuringTrafficReconnectsAndReaddsMemberships) {
  RedisServer redis;
  auto a = std::make_shared<RedisChannelLayer>(quick_retries(redis.port()));
  auto b = std::make_shared<RedisChannelLayer>(quick_retries(redis.port()));
  auto ch = b->new_channel();
  ASSERT_TRUE(eventually([&] { return a->connected() && b->connected(); }));
  auto inbox = b->attach(ch);
  auto p = std::make_shared<std::promise<std::error_code>>();
  b->group_add("live", ch, [p](std::error_code ec) { p->set_value(ec); });
  ASSERT_FALSE(wait_for(p->get_future()));

  // Traffic from a, bounded: 300 group messages over about 3 s.
  std::atomic<bool> stop{false};
  std::atomic<int> completed{0};
  std::thread sender([&] {
    for (int i = 0; i < 300 && !stop; ++i) {
      a->group_send("live", {{"type", "tick"}, {"i", i}}, [&](GroupSendResult) { ++completed; });
      std::this_thread::sleep_for(10ms);
    }
  });
  std::this_thread::sleep_for(500ms);
  redis.stop();  // every key is gone with it (no persistence)
  std::this_thread::sleep_for(300ms);
  redis.start();
  ASSERT_TRUE(eventually([&] { return a->connected() && b->connected(); }, 10s));
  stop = true;
  sender.join();
  ASSERT_TRUE(eventually([&] { return completed == 300 || completed > 0; }));

  // b put its membership back and told its consumers.
  ASSERT_TRUE(eventually([&] {
    auto members = redis.command({"ZRANGE", "asgi:group:live", "0", "-1"}).items;
    return members == std::vector<std::string>{ch};
  }));
  std::vector<MessagePtr> got;
  ASSERT_TRUE(eventually([&] {
    auto more = drain(*inbox);
    got.insert(got.end(), more.begin(), more.end());
    return has_type(got, "layer.reconnected");
  }));
  EXPECT_GE(b->redis_stats().reconnects, 1u);
  // Messages flow again.
  a->group_send("live", {{"type", "after"}});
  ASSERT_TRUE(eventually([&] {
    auto more = drain(*inbox);
    got.insert(got.end(), more.begin(), more.end());
    return has_type(got, "after");
  }));
  EXPECT_TRUE(has_type(got, "tick"));
}

TEST(RedisFaults, ASilentRedisTimesOutInsteadOfHanging) {
  RedisServer redis;
  auto o = quick_retries(redis.port());
  o.command_timeout = 300ms;
  auto layer = std::make_shared<RedisChannelLayer>(o);
  ASSERT_TRUE(eventually([&] { return layer->connected(); }));
  auto ch = layer->new_channel();
  ASSERT_FALSE(send_and_wait(*layer, ch, {{"type", "before"}}));
  // Redis stops answering every client for 2 s.
  EXPECT_EQ(redis.command({"CLIENT", "PAUSE", "2000", "ALL"}).str, "OK");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(send_and_wait(*layer, ch, {{"type", "stuck"}}), LayerError::unavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  // Once Redis answers again the layer is back by itself.
  ASSERT_TRUE(eventually([&] { return layer->connected() && !send_and_wait(*layer, ch, {{"type", "after"}}); }, 10s));
  MessagePtr m;
  std::vector<std::string> types;
  while (eventually([&] { return bool(m = layer->receive_nowait(ch)); }, 2s)) types.emplace_back(message_type(*m));
  EXPECT_NE(std::find(types.begin(), types.end(), "before"), types.end());
  EXPECT_NE(std::find(types.begin(), types.end(), "after"), types.end());
}
