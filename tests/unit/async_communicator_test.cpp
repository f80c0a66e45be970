// Coroutine consumers through WebsocketCommunicator (no sockets): the
// layer awaited, events one at a time, 1011 on a throw, run_blocking.

#include <channels/testing.hpp>

#include <gtest/gtest.h>

#include "../support/async_test_consumers.hpp"

using namespace channels;
using channels::testing::WebsocketCommunicator;
using namespace std::chrono_literals;

namespace {

class AsyncCommunicator : public ::testing::Test {
 protected:
  void SetUp() override { async_test::record = &rec; }
  void TearDown() override { async_test::record = nullptr; }
  async_test::Record rec;
};

}  // namespace

TEST_F(AsyncCommunicator, ChatAwaitsTheLayerAndBroadcasts) {
  auto layer = std::make_shared<InMemoryChannelLayer>();
  WebsocketCommunicator alice(async_test::app(), "/chat/lobby/", {.layer = layer});
  WebsocketCommunicator bob(async_test::app(), "/chat/lobby/", {.layer = layer});
  ASSERT_TRUE(alice.connect().accepted);
  ASSERT_TRUE(bob.connect().accepted);
  EXPECT_EQ(layer->group_size("chat_lobby"), 2u);
  alice.send_json_to({{"message", "hello"}});
  EXPECT_EQ(alice.receive_json_from(), (Json{{"message", "hello"}}));
  EXPECT_EQ(bob.receive_json_from(), (Json{{"message", "hello"}}));
  alice.disconnect(1001);
  // disconnect() is a coroutine too; the communicator waits for it.
  EXPECT_EQ(rec.codes(), std::vector<int>{1001});
  EXPECT_EQ(layer->group_size("chat_lobby"), 1u);
}

TEST_F(AsyncCommunicator, AnEventWaitsForThePreviousOneToFinish) {
  WebsocketCommunicator c(async_test::app(), "/ordered/");
  ASSERT_TRUE(c.connect().accepted);
  c.send_to("slow");
  c.send_to("fast");
  auto a = c.receive_from(2s), b = c.receive_from(2s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->data, "slow done");
  EXPECT_EQ(b->data, "fast done");
  EXPECT_EQ(rec.max_in_flight.load(), 1);
}

TEST_F(AsyncCommunicator, AThrowingHandlerClosesWith1011AndLaterEventsDoNotRun) {
  WebsocketCommunicator c(async_test::app(), "/throw/");
  ASSERT_TRUE(c.connect().accepted);
  c.send_to("first");
  EXPECT_EQ(c.receive_from(2s)->data, "ran: first");
  c.send_to("boom");
  c.send_to("later");
  EXPECT_FALSE(c.receive_from(500ms));
  EXPECT_EQ(c.close_code(), 1011);
  c.disconnect(1011);
  EXPECT_EQ(rec.codes(), std::vector<int>{1011});
}

TEST_F(AsyncCommunicator, AThrowInConnectRefuses) {
  WebsocketCommunicator c(async_test::app(), "/throw-connect/");
  auto r = c.connect(2s);
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.close_code, 1011);
}

TEST_F(AsyncCommunicator, RunBlockingRunsElsewhereAndResumesOnTheStrand) {
  WebsocketCommunicator c(async_test::app(), "/blocking/");
  ASSERT_TRUE(c.connect().accepted);
  c.send_json_to({{"cmd", "block"}});
  auto j = c.receive_json_from(3s);
  EXPECT_EQ(j["ran_elsewhere"], true);
  EXPECT_EQ(j["on_strand"], true);
  c.send_json_to({{"cmd", "fail"}});
  EXPECT_FALSE(c.receive_from(2s));
  EXPECT_EQ(c.close_code(), 1011);
}
