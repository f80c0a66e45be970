// Coroutine consumers over real sockets: the handshake waits for connect(),
// events run one at a time per connection, a throw closes with 1011, and a
// co_await (timer or run_blocking) never holds up other connections, even
// with a single I/O thread.

#include <gtest/gtest.h>

#include "../support/async_test_consumers.hpp"
#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::TestServer;

namespace {

class AsyncServer : public ::testing::Test {
 protected:
  void SetUp() override { async_test::record = &rec; }
  void TearDown() override { async_test::record = nullptr; }
  static ServerOptions one_thread() {
    auto o = TestServer::defaults();
    o.threads = 1;
    return o;
  }
  async_test::Record rec;
};

Json json_of(const std::optional<ClientMessage>& m) {
  return m ? Json::parse(m->data, nullptr, false) : Json();
}

}  // namespace

TEST_F(AsyncServer, ChatOverSockets) {
  TestServer ts(async_test::app());
  WebsocketClient a, b;
  ASSERT_TRUE(a.connect(ts.url("/chat/room1/")).accepted);
  ASSERT_TRUE(b.connect(ts.url("/chat/room1/")).accepted);
  a.send(R"({"message": "hi"})");
  EXPECT_EQ(json_of(a.receive(3s)), (Json{{"message", "hi"}}));
  EXPECT_EQ(json_of(b.receive(3s)), (Json{{"message", "hi"}}));
  a.close();
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1000);
}

TEST_F(AsyncServer, FramesAndLayerMessagesRunOneAtATimeInOrder) {
  TestServer ts(async_test::app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/ordered/")).accepted);
  c.send("slow 1");
  c.send("fast 2");
  c.send("slow 3");
  c.send("fast 4");
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {
    auto m = c.receive(3s);
    ASSERT_TRUE(m);
    got.push_back(m->data);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"slow 1 done", "fast 2 done", "slow 3 done", "fast 4 done"}));
  c.send("layer");
  auto first = c.receive(3s), second = c.receive(3s);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->data, "slow handled");
  EXPECT_EQ(second->data, "fast handled");
  EXPECT_EQ(rec.max_in_flight.load(), 1);
}

TEST_F(AsyncServer, AThrowingCoroutineClosesOnlyItsConnectionWith1011) {
  TestServer ts(async_test::app());
  WebsocketClient bad, good;
  ASSERT_TRUE(bad.connect(ts.url("/throw/")).accepted);
  ASSERT_TRUE(good.connect(ts.url("/throw/")).accepted);
  bad.send("boom");
  bad.send("later");
  EXPECT_FALSE(bad.receive(3s));
  EXPECT_EQ(bad.close_code(), 1011);
  good.send("fine");
  auto m = good.receive(3s);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "ran: fine");
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1011);
}

TEST_F(AsyncServer, AThrowInConnectRefusesTheHandshake) {
  TestServer ts(async_test::app());
  WebsocketClient c;
  auto r = c.connect(ts.url("/throw-connect/"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.status, 403);
}

TEST_F(AsyncServer, AwaitingATimerOrRunBlockingLeavesTheOnlyThreadFree) {
  TestServer ts(async_test::app(), one_thread());
  for (std::string cmd : {"sleep", "block"}) {
    WebsocketClient waiting, other;
    ASSERT_TRUE(waiting.connect(ts.url("/blocking/")).accepted);
    ASSERT_TRUE(other.connect(ts.url("/blocking/")).accepted);
    auto t0 = std::chrono::steady_clock::now();
    waiting.send(Json{{"cmd", cmd}}.dump());
    std::this_thread::sleep_for(20ms);
    other.send(R"({"cmd": "echo"})");
    auto quick = other.receive(3s);
    auto quick_ms = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(quick);
    EXPECT_EQ(json_of(quick)["cmd"], "echo");
    // The waiting one takes 300 ms; the other was answered well before.
    EXPECT_LT(quick_ms, 250ms) << cmd;
    // Only the other one's timing is the point: the waiting one may take
    // long on a loaded machine or under a sanitizer.
    auto slow = json_of(waiting.receive(10s));
    EXPECT_EQ(slow["cmd"], cmd);
    EXPECT_EQ(slow["on_strand"], true);
    if (cmd == "block") EXPECT_EQ(slow["ran_elsewhere"], true);
  }
}
