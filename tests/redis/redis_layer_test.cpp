// RedisChannelLayer against a real redis-server: Channels' semantics, and
// channels_redis' storage format as another process would see it.

#include <channels/layers/redis.hpp>

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include <channels/errors.hpp>

#include "../net/test_server.hpp"
#include "redis_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::RedisServer;

namespace {

RedisLayerOptions options_for(const RedisServer& redis) {
  RedisLayerOptions o;
  o.hosts = {redis.url()};
  o.command_timeout = 2s;
  o.retry_max = 200ms;
  return o;
}

std::shared_ptr<RedisChannelLayer> make(const RedisServer& redis, RedisLayerOptions o) {
  o.hosts = {redis.url()};
  auto l = std::make_shared<RedisChannelLayer>(std::move(o));
  EXPECT_TRUE(eventually([&] { return l->connected(); })) << "layer did not connect to " << redis.url();
  return l;
}
std::shared_ptr<RedisChannelLayer> make(const RedisServer& redis) { return make(redis, options_for(redis)); }

// The next message of a channel, waiting up to `timeout`.
MessagePtr receive(ChannelLayer& layer, const std::string& channel, std::chrono::milliseconds timeout = 5s) {
  MessagePtr m;
  eventually([&] { return bool(m = layer.receive_nowait(channel)); }, timeout);
  return m;
}

// Runs an operation with a completion and waits for the result.
std::error_code sent(ChannelLayer& layer, const std::string& channel, Message m) {
  std::promise<std::error_code> p;
  layer.send(channel, std::move(m), [&](std::error_code ec) { p.set_value(ec); });
  auto f = p.get_future();
  if (f.wait_for(10s) != std::future_status::ready) return std::make_error_code(std::errc::timed_out);
  return f.get();
}
GroupSendResult group_sent(ChannelLayer& layer, const std::string& group, Message m) {
  std::promise<GroupSendResult> p;
  layer.group_send(group, std::move(m), [&](GroupSendResult r) { p.set_value(r); });
  auto f = p.get_future();
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
  return f.get();
}
std::error_code added(ChannelLayer& layer, const std::string& group, const std::string& channel) {
  std::promise<std::error_code> p;
  layer.group_add(group, channel, [&](std::error_code ec) { p.set_value(ec); });
  auto f = p.get_future();
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
  return f.get();
}

// A channel of a process that does not exist: nobody pops its key, so the
// test can look at what was stored there.
const std::string foreign = "specific.cpp0123456789!conn42";
const std::string foreign_key = "asgispecific.cpp0123456789!";

struct RedisLayer : ::testing::Test {
  RedisServer redis;
};

}  // namespace

TEST_F(RedisLayer, SendThenReceiveInOrderWithEveryMsgpackType) {
  auto layer = make(redis);
  auto ch = layer->new_channel();
  EXPECT_EQ(ch.rfind("specific." + layer->client_prefix() + "!", 0), 0u);
  EXPECT_EQ(ch.size(), 74u);  // "specific." + 32 hex + "!" + 32 hex, as channels_redis
  Message rich{{"type", "x.y"}, {"n", -7}, {"big", 1ull << 40}, {"f", 1.25}, {"t", true}, {"none", nullptr},
               {"b", Json::binary({0x00, 0xff, 0x10})}, {"l", Json::array({1, "two", Json::object()})},
               {"u", "\xc3\xa9\xe2\x98\x83"}};
  for (int i = 0; i < 20; ++i) {
    Message m = rich;
    m["seq"] = i;
    ASSERT_FALSE(sent(*layer, ch, m));
  }
  for (int i = 0; i < 20; ++i) {
    auto m = receive(*layer, ch);
    ASSERT_TRUE(m) << "message " << i << " did not arrive";
    Message expected = rich;
    expected["seq"] = i;
    EXPECT_EQ(*m, expected);  // __asgi_channel__ removed, every type intact
  }
  EXPECT_EQ(layer->receive_nowait(ch), nullptr);
}

TEST_F(RedisLayer, UsedBeforeItsFirstConnectionIsUp) {
  // A server accepts consumers as soon as it starts, maybe before the
  // layer's first connection is up: what they ask for then is not lost.
  for (int i = 0; i < 5; ++i) {
    auto o = options_for(redis);
    auto layer = std::make_shared<RedisChannelLayer>(o);  // not waiting for connected()
    auto ch = layer->new_channel();
    std::string group = "early" + std::to_string(i);
    EXPECT_FALSE(added(*layer, group, ch));
    EXPECT_FALSE(sent(*layer, ch, {{"type", "first"}}));
    EXPECT_EQ(redis.command({"ZRANGE", "asgi:group:" + group, "0", "-1"}).items, std::vector<std::string>{ch});
    auto m = receive(*layer, ch);
    ASSERT_TRUE(m);
    EXPECT_EQ((*m)["type"], "first");
  }
}

TEST_F(RedisLayer, StoresWhatChannelsRedisStores) {
  auto layer = make(redis);
  ASSERT_FALSE(sent(*layer, foreign, {{"type", "x.y"}, {"n", 1}}));
  EXPECT_EQ(redis.command({"TYPE", foreign_key}).str, "zset");
  auto ttl = redis.command({"TTL", foreign_key}).integer;
  EXPECT_GT(ttl, 55);
  EXPECT_LE(ttl, 60);
  auto members = redis.command({"ZRANGE", foreign_key, "0", "-1", "WITHSCORES"}).items;
  ASSERT_EQ(members.size(), 2u);
  const std::string& member = members[0];
  ASSERT_GT(member.size(), 12u);
  auto body = Json::from_msgpack(member.substr(12));
  EXPECT_EQ(body, (Json{{"type", "x.y"}, {"n", 1}, {"__asgi_channel__", foreign}}));
  // The score is Unix time in seconds.
  double score = std::stod(members[1]);
  double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(score, now, 30);

  ASSERT_FALSE(added(*layer, "grp", foreign));
  EXPECT_EQ(redis.command({"TYPE", "asgi:group:grp"}).str, "zset");
  EXPECT_GT(redis.command({"TTL", "asgi:group:grp"}).integer, 86390);
  EXPECT_EQ(redis.command({"ZRANGE", "asgi:group:grp", "0", "-1"}).items, std::vector<std::string>{foreign});

  // group_send: one member per destination key, __asgi_channel__ a list.
  auto r = group_sent(*layer, "grp", {{"type", "chat.message"}, {"message", "to all"}});
  EXPECT_EQ(r.delivered, 1u);
  members = redis.command({"ZRANGE", foreign_key, "0", "-1"}).items;
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(Json::from_msgpack(members[1].substr(12)),
            (Json{{"type", "chat.message"}, {"message", "to all"}, {"__asgi_channel__", Json::array({foreign})}}));
}

TEST_F(RedisLayer, GroupSendAcrossTwoProcessesIsDecodedOncePerProcess) {
  auto a = make(redis), b = make(redis);
  auto a1 = a->new_channel(), a2 = a->new_channel(), b1 = b->new_channel();
  for (const auto& ch : {a1, a2}) ASSERT_FALSE(added(*a, "room", ch));
  ASSERT_FALSE(added(*b, "room", b1));
  auto r = group_sent(*b, "room", {{"type", "chat.message"}, {"message", "hello"}});
  EXPECT_EQ(r.delivered, 3u);
  EXPECT_EQ(r.dropped, 0u);
  auto m1 = receive(*a, a1), m2 = receive(*a, a2), m3 = receive(*b, b1);
  ASSERT_TRUE(m1 && m2 && m3);
  Message expected{{"type", "chat.message"}, {"message", "hello"}};
  EXPECT_EQ(*m1, expected);
  EXPECT_EQ(*m3, expected);
  // Both members in process A share one decoded copy.
  EXPECT_EQ(m1.get(), m2.get());
  // One Redis message per process, not per member.
  EXPECT_EQ(a->redis_stats().received, 1u);
  EXPECT_EQ(b->redis_stats().received, 1u);
  // Discarded: no more messages.
  std::promise<void> gone;
  a->group_discard("room", a2, [&](std::error_code) { gone.set_value(); });
  gone.get_future().wait_for(5s);
  r = group_sent(*b, "room", {{"type", "chat.message"}, {"message", "again"}});
  EXPECT_EQ(r.delivered, 2u);
  ASSERT_TRUE(receive(*a, a1));
  ASSERT_TRUE(receive(*b, b1));
  EXPECT_EQ(a->receive_nowait(a2), nullptr);
}

TEST_F(RedisLayer, DirectSendToAnotherProcess) {
  auto a = make(redis), b = make(redis);
  auto ch = b->new_channel();
  ASSERT_FALSE(sent(*a, ch, {{"type", "direct"}, {"x", 1}}));
  auto m = receive(*b, ch);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["x"], 1);
}

TEST_F(RedisLayer, AttachedInboxIsWoken) {
  auto layer = make(redis);
  auto ch = layer->new_channel();
  auto inbox = layer->attach(ch);
  std::promise<void> woken;
  std::atomic<bool> once{false};
  inbox->on_wake([&] {
    if (!once.exchange(true)) woken.set_value();
  });
  layer->send(ch, {{"type", "wake.up"}});
  ASSERT_EQ(woken.get_future().wait_for(5s), std::future_status::ready);
  auto all = inbox->take_all(Inbox::Clock::now(), 60s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ((*all[0])["type"], "wake.up");
  layer->detach(ch);
}

TEST_F(RedisLayer, SendToAFullChannelReportsAndCounts) {
  auto o = options_for(redis);
  o.layer.capacity = 2;
  auto layer = make(redis, o);
  EXPECT_FALSE(sent(*layer, foreign, {{"type", "a"}}));
  EXPECT_FALSE(sent(*layer, foreign, {{"type", "b"}}));
  EXPECT_EQ(sent(*layer, foreign, {{"type", "c"}}), LayerError::channel_full);
  EXPECT_EQ(layer->stats().dropped_full, 1u);
  EXPECT_EQ(redis.command({"ZCARD", foreign_key}).integer, 2);
  // group_send: a full key is skipped for its members only, and counted.
  auto mine = layer->new_channel();
  ASSERT_FALSE(added(*layer, "g", foreign));
  ASSERT_FALSE(added(*layer, "g", mine));
  auto r = group_sent(*layer, "g", {{"type", "hello"}});
  EXPECT_EQ(r.delivered, 1u);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ(layer->stats().dropped_full, 2u);
  EXPECT_TRUE(receive(*layer, mine));
}

TEST_F(RedisLayer, ChannelCapacityPatternsFirstMatchWins) {
  auto o = options_for(redis);
  o.channel_capacity = {{"specific.cpp*", 1}, {"specific.*", 50}};
  auto layer = make(redis, o);
  EXPECT_FALSE(sent(*layer, foreign, {{"type", "a"}}));
  EXPECT_EQ(sent(*layer, foreign, {{"type", "b"}}), LayerError::channel_full);
}

TEST_F(RedisLayer, ExpiredMessagesAreTrimmedAndKeysExpire) {
  auto o = options_for(redis);
  o.layer.expiry = 1s;
  auto layer = make(redis, o);
  EXPECT_FALSE(sent(*layer, foreign, {{"type", "old"}}));
  EXPECT_EQ(redis.command({"TTL", foreign_key}).integer, 1);
  // Trimmed lazily by the next write, as channels_redis does (scores below
  // int(now) - expiry go).
  std::this_thread::sleep_for(2100ms);
  EXPECT_FALSE(sent(*layer, "specific.cpp0123456789!other", {{"type", "new"}}));
  EXPECT_EQ(redis.command({"ZCARD", foreign_key}).integer, 1);
  auto members = redis.command({"ZRANGE", foreign_key, "0", "-1"}).items;
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(Json::from_msgpack(members[0].substr(12))["type"], "new");
}

TEST_F(RedisLayer, ExpiredMembershipsAreDroppedAtGroupSend) {
  auto o = options_for(redis);
  o.layer.group_expiry = 1s;
  auto layer = make(redis, o);
  auto ch = layer->new_channel();
  ASSERT_FALSE(added(*layer, "brief", ch));
  std::this_thread::sleep_for(2100ms);
  auto r = group_sent(*layer, "brief", {{"type", "late"}});
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_EQ(redis.command({"EXISTS", "asgi:group:brief"}).integer, 0);
}

TEST_F(RedisLayer, NormalChannelsAreSharedByProcesses) {
  auto a = make(redis), b = make(redis);
  EXPECT_EQ(b->receive_nowait("worker.tasks"), nullptr);  // starts listening
  ASSERT_FALSE(sent(*a, "worker.tasks", {{"type", "job"}, {"id", 7}}));
  auto m = receive(*b, "worker.tasks");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["id"], 7);
  // No __asgi_channel__ is added for normal channels.
  ASSERT_FALSE(added(*a, "workers", "worker.tasks"));
  auto r = group_sent(*a, "workers", {{"type", "job"}, {"id", 8}});
  EXPECT_EQ(r.delivered, 1u);
  m = receive(*b, "worker.tasks");
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["id"], 8);
}

TEST_F(RedisLayer, EncryptedBetweenProcessesWithRotatedKeys) {
  auto o = options_for(redis);
  o.symmetric_encryption_keys = {"new-secret", "old-secret"};
  auto a = make(redis, o);
  o.symmetric_encryption_keys = {"old-secret"};  // a process not yet rotated
  auto b = make(redis, o);
  auto ch = b->new_channel();
  ASSERT_FALSE(sent(*b, foreign, {{"type", "peek"}}));
  auto stored = redis.command({"ZRANGE", foreign_key, "0", "-1"}).items;
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].substr(12, 6), "gAAAAA");  // a Fernet token after the prefix
  // a encrypts with "new-secret", which b does not know: skipped, counted.
  ASSERT_FALSE(sent(*a, ch, {{"type", "unreadable"}}));
  ASSERT_TRUE(eventually([&] { return b->redis_stats().malformed == 1; }));
  // b encrypts with "old-secret", which a can still read.
  auto ach = a->new_channel();
  ASSERT_FALSE(sent(*b, ach, {{"type", "readable"}}));
  auto m = receive(*a, ach);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["type"], "readable");
}

TEST_F(RedisLayer, MalformedMessageIsSkippedAndTheNextArrives) {
  auto layer = make(redis);
  auto ch = layer->new_channel();
  std::string key = "asgispecific." + layer->client_prefix() + "!";
  // Invalid UTF-8 in a str, then too short, then not msgpack, then no channel.
  std::string prefix(12, '\x01');
  redis.command({"ZADD", key, "1", prefix + "\x81\xa1" "a" "\xa2\xff\xfe"});
  redis.command({"ZADD", key, "2", "short"});
  redis.command({"ZADD", key, "3", prefix + "\xc1"});
  redis.command({"ZADD", key, "4", prefix + "\x81\xa4type\xa1x"});
  ASSERT_TRUE(eventually([&] { return layer->redis_stats().malformed == 4; }))
      << layer->redis_stats().malformed;
  ASSERT_FALSE(sent(*layer, ch, {{"type", "fine"}}));
  auto m = receive(*layer, ch);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["type"], "fine");
}

TEST_F(RedisLayer, ReservedKeyAndBadNamesAreRefused) {
  auto layer = make(redis);
  EXPECT_THROW(layer->send(foreign, {{"type", "x"}, {"__asgi_channel__", "y"}}), std::invalid_argument);
  EXPECT_THROW(layer->send("bad name", {{"type", "x"}}), InvalidName);
  EXPECT_THROW(layer->group_send("a:b", {{"type", "x"}}), InvalidName);
  EXPECT_THROW(layer->attach(foreign), InvalidName);  // another process' channel
  EXPECT_THROW(layer->send(foreign, Json::array()), std::invalid_argument);
}

TEST(RedisLayerOptions, BadSettingsSayWhatToWrite) {
  RedisLayerOptions o;
  o.hosts = {"localhost:6379"};
  EXPECT_THROW(RedisChannelLayer{o}, ConfigError);
  o.hosts = {"redis://127.0.0.1:1"};
  o.layer.expiry = 500ms;
  EXPECT_THROW(RedisChannelLayer{o}, ConfigError);
}

TEST(RedisLayerSharding, TwoHostsGroupsAndChannelsMeetOnTheHashedHost) {
  RedisServer r0, r1;
  RedisLayerOptions o;
  o.hosts = {r0.url(), r1.url()};
  o.retry_max = 200ms;
  auto a = std::make_shared<RedisChannelLayer>(o), b = std::make_shared<RedisChannelLayer>(o);
  auto ch = b->new_channel();  // starts b's receive loops on both hosts
  ASSERT_TRUE(eventually([&] { return a->connected() && b->connected(); }));
  // "chat_lobby" hashes to host 1 of 2 (crc32 0xcd99b86c -> 2156).
  ASSERT_FALSE(added(*a, "chat_lobby", ch));
  EXPECT_EQ(r1.command({"ZCARD", "asgi:group:chat_lobby"}).integer, 1);
  EXPECT_EQ(r0.command({"EXISTS", "asgi:group:chat_lobby"}).integer, 0);
  auto g = group_sent(*a, "chat_lobby", {{"type", "via.group"}});
  EXPECT_EQ(g.delivered, 1u);
  ASSERT_TRUE(receive(*b, ch));
  ASSERT_FALSE(sent(*a, ch, {{"type", "direct"}}));
  ASSERT_TRUE(receive(*b, ch));
  // channels_redis' send() may put a message for this process on the other
  // host (it hashes the full channel name): it still arrives.
  std::string key = "asgispecific." + b->client_prefix() + "!";
  std::string member(12, '\x02');
  auto body = Json::to_msgpack(Json{{"type", "misrouted"}, {"__asgi_channel__", ch}});
  member.append(body.begin(), body.end());
  for (auto* r : {&r0, &r1}) r->command({"ZADD", key, "1", member});
  ASSERT_TRUE(receive(*b, ch));
  ASSERT_TRUE(receive(*b, ch));
}
