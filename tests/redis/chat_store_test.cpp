// The chat's Redis store against a real redis-server: two stores on one Redis
// behave like two chat processes, sharing history and presence.

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "redis_server.hpp"
#include "store.hpp"

using namespace std::chrono_literals;
using chat::Json;
using chat::Member;
using testing_support::RedisServer;

namespace {

// Waits for a store's reply (it comes on the store's thread).
Json call(const std::function<void(chat::Store::Reply)>& op) {
  auto p = std::make_shared<std::promise<Json>>();
  auto f = p->get_future();
  op([p](std::error_code ec, Json result) {
    if (ec) p->set_exception(std::make_exception_ptr(std::runtime_error(ec.message())));
    else p->set_value(std::move(result));
  });
  if (f.wait_for(5s) != std::future_status::ready) throw std::runtime_error("no reply from the store in 5 s");
  return f.get();
}

struct RedisStore : ::testing::Test {
  RedisServer redis;
  std::shared_ptr<chat::Store> a = chat::make_redis_store(redis.url(), "t");
  std::shared_ptr<chat::Store> b = chat::make_redis_store(redis.url(), "t");
};

TEST_F(RedisStore, HistoryIsSharedAndIdsGrowAcrossProcesses) {
  for (int i = 0; i < 30; ++i) {
    auto& s = i % 2 ? a : b;
    Json stored = call([&](auto done) { s->append("room", {{"message", "m" + std::to_string(i)}}, 25, done); });
    EXPECT_EQ(stored["id"], i + 1);
    EXPECT_EQ(stored["message"], "m" + std::to_string(i));
  }
  Json room = call([&](auto done) { b->room("room", 20, done); });
  ASSERT_EQ(room["history"].size(), 20u);
  EXPECT_EQ(room["history"].front()["id"], 11);
  EXPECT_EQ(room["history"].back()["message"], "m29");
  EXPECT_EQ(redis.command({"LLEN", "t:history:room"}).integer, 25);  // kept: 25
}

TEST_F(RedisStore, PresenceIsSharedAndALeaveNeedsTheHoldingConnection) {
  call([&](auto done) { a->touch({{"room", "ann", "Ann", "conn-a"}}, 10s, done); });
  call([&](auto done) { b->touch({{"room", "bo", "Bo", "conn-b"}}, 10s, done); });
  Json online = call([&](auto done) { a->room("room", 0, done); })["online"];
  EXPECT_EQ(online.size(), 2u);
  Json rooms = call([&](auto done) { b->rooms(done); });
  EXPECT_EQ(rooms, (Json::parse(R"([{"room": "room", "online": 2}])")));
  // Ann reconnected through b: a's late leave for her old connection does nothing.
  call([&](auto done) { b->touch({{"room", "ann", "Ann", "conn-a2"}}, 10s, done); });
  EXPECT_EQ(call([&](auto done) { a->leave({"room", "ann", "Ann", "conn-a"}, done); }), false);
  EXPECT_EQ(call([&](auto done) { b->leave({"room", "ann", "Ann", "conn-a2"}, done); }), true);
  online = call([&](auto done) { a->room("room", 0, done); })["online"];
  ASSERT_EQ(online.size(), 1u);
  EXPECT_EQ(online[0]["name"], "Bo");
}

TEST_F(RedisStore, ExpiredMembersAreReapedOnceAcrossProcesses) {
  call([&](auto done) { a->touch({{"room", "dead", "Dead", "c1"}, {"other", "live", "Live", "c2"}}, 200ms, done); });
  call([&](auto done) { a->touch({{"other", "live", "Live", "c2"}}, 10s, done); });
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(call([&](auto done) { a->room("room", 0, done); })["online"].empty());  // expired: not shown
  Json first = call([&](auto done) { a->reap(done); });
  Json second = call([&](auto done) { b->reap(done); });
  EXPECT_EQ(first, Json::parse(R"([{"room": "room", "id": "dead", "name": "Dead"}])"));
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(call([&](auto done) { b->rooms(done); }), Json::parse(R"([{"room": "other", "online": 1}])"));
}

TEST_F(RedisStore, ARedisThatIsDownIsAnErrorNotAHangAndItRecovers) {
  redis.stop();
  EXPECT_THROW(call([&](auto done) { a->append("room", {{"message", "lost"}}, 50, done); }), std::runtime_error);
  redis.start();
  Json stored = call([&](auto done) { a->append("room", {{"message", "back"}}, 50, done); });
  EXPECT_EQ(stored["message"], "back");
}

}  // namespace
