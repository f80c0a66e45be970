// The chat consumers, tested without sockets through WebsocketCommunicator:
// the way apps are meant to test their own consumers.

#include <channels/testing.hpp>

#include <gtest/gtest.h>

#include <channels/channels.hpp>

#include "consumers.hpp"

using namespace channels;
using channels::testing::WebsocketCommunicator;
using namespace std::chrono_literals;

namespace {

ApplicationPtr chat_app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{
                        path("ws/chat/<str:room_name>/", as_app<chat::ChatConsumer>()),
                        path("room/<str:group>/", as_app<chat::RoomConsumer>()),
                        path("ws/echo/", as_app<chat::EchoConsumer>()),
                    })},
  });
}

struct Subprotocols : WebsocketConsumer {
  void on_connect() override { accept("v2"); }
};

struct Thrower : WebsocketConsumer {
  void on_receive(std::string_view) override { throw std::runtime_error("bug"); }
};

}  // namespace

TEST(Communicator, ChatRoomBroadcastsToEveryMember) {
  auto layer = std::make_shared<InMemoryChannelLayer>();
  WebsocketCommunicator alice(chat_app(), "/ws/chat/lobby/", {.layer = layer});
  WebsocketCommunicator bob(chat_app(), "/ws/chat/lobby/", {.layer = layer});
  WebsocketCommunicator carol(chat_app(), "/ws/chat/other/", {.layer = layer});
  ASSERT_TRUE(alice.connect().accepted);
  ASSERT_TRUE(bob.connect().accepted);
  ASSERT_TRUE(carol.connect().accepted);
  alice.send_json_to({{"message", "hello"}});
  EXPECT_EQ(alice.receive_json_from(), (Json{{"message", "hello"}}));
  EXPECT_EQ(bob.receive_json_from(), (Json{{"message", "hello"}}));
  EXPECT_TRUE(carol.receive_nothing());
}

TEST(Communicator, DisconnectLeavesTheGroup) {
  auto layer = std::make_shared<InMemoryChannelLayer>();
  {
    WebsocketCommunicator a(chat_app(), "/ws/chat/r/", {.layer = layer});
    ASSERT_TRUE(a.connect().accepted);
    EXPECT_EQ(layer->group_size("chat_r"), 1u);
    a.disconnect();
    EXPECT_EQ(layer->group_size("chat_r"), 0u);
  }
  WebsocketCommunicator b(chat_app(), "/ws/chat/r/", {.layer = layer});
  ASSERT_TRUE(b.connect().accepted);
  EXPECT_EQ(layer->group_size("chat_r"), 1u);
}

TEST(Communicator, RefusedConnectionReportsTheCode) {
  WebsocketCommunicator c(chat_app(), "/ws/chat/bad%20room/");
  auto r = c.connect();
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.close_code, 1000);
}

TEST(Communicator, InvalidJsonAndBinaryClose) {
  WebsocketCommunicator a(chat_app(), "/ws/chat/x/");
  ASSERT_TRUE(a.connect().accepted);
  a.send_to("{oops");
  EXPECT_FALSE(a.receive_from(200ms));
  EXPECT_EQ(a.close_code(), 1007);
  WebsocketCommunicator b(chat_app(), "/ws/chat/x/");
  ASSERT_TRUE(b.connect().accepted);
  b.send_bytes_to("\x01");
  EXPECT_FALSE(b.receive_from(200ms));
  EXPECT_EQ(b.close_code(), 1003);
}

TEST(Communicator, MalformedChatMessageGetsAnErrorAndStaysOpen) {
  WebsocketCommunicator a(chat_app(), "/ws/chat/x/");
  ASSERT_TRUE(a.connect().accepted);
  a.send_json_to({{"text", "wrong key"}});
  EXPECT_TRUE(a.receive_json_from().contains("error"));
  EXPECT_EQ(a.close_code(), 0);
}

TEST(Communicator, RoomSendsTextToTheGroupAndEchoKeepsFrameTypes) {
  auto layer = std::make_shared<InMemoryChannelLayer>();
  WebsocketCommunicator a(chat_app(), "/room/g/", {.layer = layer});
  WebsocketCommunicator b(chat_app(), "/room/g/", {.layer = layer});
  ASSERT_TRUE(a.connect().accepted);
  ASSERT_TRUE(b.connect().accepted);
  a.send_to("plain text");
  auto m = b.receive_from();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "plain text");
  EXPECT_FALSE(m->binary);

  WebsocketCommunicator e(chat_app(), "/ws/echo/");
  ASSERT_TRUE(e.connect().accepted);
  e.send_bytes_to(std::string("\0\1", 2));
  auto r = e.receive_from();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->binary);
  EXPECT_EQ(r->data, std::string("\0\1", 2));
}

TEST(Communicator, SubprotocolsAndExceptions) {
  auto app = std::make_shared<URLRouter>(std::vector<Route>{
      path("sub/", as_app<Subprotocols>()),
      path("throw/", as_app<Thrower>()),
  });
  WebsocketCommunicator s(app, "/sub/", {.subprotocols = {"v1", "v2"}});
  EXPECT_EQ(s.connect().subprotocol, "v2");
  WebsocketCommunicator t(app, "/throw/");
  ASSERT_TRUE(t.connect().accepted);
  t.send_to("x");
  EXPECT_FALSE(t.receive_from(200ms));
  EXPECT_EQ(t.close_code(), 1011);
}

TEST(Communicator, UnknownPathIsAnError) {
  EXPECT_THROW(WebsocketCommunicator(chat_app(), "/nope/"), std::invalid_argument);
}
