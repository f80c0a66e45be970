// The bundled chat app, loaded from the repo's routing.yaml, over real sockets.

#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "consumers.hpp"
#include "room_burst.hpp"
#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::burst_in_sender_order;
using testing_support::TestServer;

namespace {

struct ChatApp : ::testing::Test {
  static Config config() {
    Registry r;
    chat::register_consumers(r);
    return load_config(std::filesystem::path(CHANNELS_SOURCE_DIR) / "routing.yaml", r);
  }
  void SetUp() override {
    auto c = config();
    auto o = c.server;
    o.port = 0;
    o.bind = "127.0.0.1";
    o.threads = 2;
    server = std::make_unique<TestServer>(c.application, o, make_layer(c.channel_layer));
  }
  std::unique_ptr<TestServer> server;
};

}  // namespace

TEST_F(ChatApp, TwoClientsInOneRoomBothGetAMessage) {
  WebsocketClient a, b, other;
  ASSERT_TRUE(a.connect(server->url("/ws/chat/lobby/")).accepted);
  ASSERT_TRUE(b.connect(server->url("/ws/chat/lobby/")).accepted);
  ASSERT_TRUE(other.connect(server->url("/ws/chat/elsewhere/")).accepted);
  a.send(R"({"message": "hello room"})");
  for (auto* c : {&a, &b}) {
    auto m = c->receive();
    ASSERT_TRUE(m);
    EXPECT_EQ(Json::parse(m->data), (Json{{"message", "hello room"}}));
  }
  EXPECT_FALSE(other.receive(200ms));  // another room hears nothing
  EXPECT_TRUE(other.is_open());
}

TEST_F(ChatApp, HundredClientsTimesHundredMessagesAllArriveInEachSendersOrder) {
  constexpr int clients = 100, per_client = 100;
  std::vector<WebsocketClient> ws(clients);
  for (auto& c : ws) ASSERT_TRUE(c.connect(server->url("/room/big/")).accepted);
  EXPECT_EQ(burst_in_sender_order(ws, per_client, 20s), std::vector<std::string>{});
  EXPECT_EQ(server->server.channel_layer().stats().dropped_full, 0u);
}

TEST_F(ChatApp, InvalidJsonClosesWith1007AndBinaryWith1003) {
  WebsocketClient a, b, c;
  ASSERT_TRUE(a.connect(server->url("/ws/chat/r/")).accepted);
  a.send("{not json");
  EXPECT_FALSE(a.receive());
  EXPECT_EQ(a.close_code(), 1007);
  ASSERT_TRUE(b.connect(server->url("/ws/chat/r/")).accepted);
  b.send_bytes("\x01\x02");
  EXPECT_FALSE(b.receive());
  EXPECT_EQ(b.close_code(), 1003);
  ASSERT_TRUE(c.connect(server->url("/ws/chat/r/")).accepted);
  c.send(R"({"nomessage": 1})");
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_TRUE(Json::parse(m->data).contains("error"));
  c.send(R"({"message": "ok"})");
  m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(Json::parse(m->data)["message"], "ok");
}

// Copying or dumping a JSON value recurses once per level: a deep `ref`
// (which the chat copies into its reply) must be refused, not crash the server.
TEST_F(ChatApp, DeeplyNestedJsonClosesWith1009AndTheServerCarriesOn) {
  auto with_ref = [](int levels) {
    return R"({"message": "hi", "ref": )" + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  WebsocketClient deep, fine, later;
  ASSERT_TRUE(deep.connect(server->url("/ws/chat/nest/")).accepted);
  ASSERT_TRUE(fine.connect(server->url("/ws/chat/nest/")).accepted);
  deep.send(with_ref(200'000));
  EXPECT_FALSE(deep.receive());
  EXPECT_EQ(deep.close_code(), 1009);
  EXPECT_NE(deep.close_reason().find("nested too deeply"), std::string::npos) << deep.close_reason();
  // At the limit (the object and 127 arrays): accepted.
  fine.send(with_ref(127));
  auto m = fine.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(Json::parse(m->data)["message"], "hi");
  ASSERT_TRUE(later.connect(server->url("/ws/chat/nest/")).accepted);
  later.send(R"({"message": "still here"})");
  m = later.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(Json::parse(m->data)["message"], "still here");
}

TEST_F(ChatApp, BadRoomNameIsRefusedWith403) {
  WebsocketClient c;
  auto r = c.connect(server->url("/ws/chat/bad%20room/"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.status, 403);
}

TEST_F(ChatApp, EchoKeepsFrameTypesAndRefusesOversizedWith1009) {
  WebsocketClient c;
  ASSERT_TRUE(c.connect(server->url("/ws/echo/")).accepted);
  c.send_bytes(std::string(70000, '\x07'));
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->binary);
  EXPECT_EQ(m->data.size(), 70000u);
  try {
    c.send(std::string(1024 * 1024 + 1, 'x'));
    EXPECT_FALSE(c.receive());
  } catch (const std::system_error&) {
    // The server may close while the client is still writing.
  }
  EXPECT_FALSE(c.is_open());
  EXPECT_EQ(c.close_code(), 1009);
}

TEST_F(ChatApp, PagesServeTheTutorialElementIds) {
  auto lobby = testing_support::http_get(server->server.port(), "GET /chat/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(lobby.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(lobby.find("id=\"room-name-input\""), std::string::npos);
  EXPECT_NE(lobby.find("id=\"room-name-submit\""), std::string::npos);
  auto room = testing_support::http_get(server->server.port(),
                                        "GET /chat/%3Cb%3E%26/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(room.rfind("HTTP/1.1 200", 0), 0u);
  for (auto id : {"chat-log", "chat-message-input", "chat-message-submit"})
    EXPECT_NE(room.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_EQ(room.find("<b>"), std::string::npos);  // the room name cannot open or close a tag
  EXPECT_NE(room.find("\"\\u003Cb\\u003E\\u0026\""), std::string::npos) << room;
}

TEST_F(ChatApp, PagesFromOtherSitesMayNotOpenTheChatSocket) {
  WebsocketClient::Options evil, own, local;
  evil.headers = {{"Origin", "https://evil.example"}};
  own.headers = {{"Origin", "http://127.0.0.1:" + std::to_string(server->server.port())}};
  local.headers = {{"Origin", "http://localhost:8000"}};
  WebsocketClient a, b, c, d;
  EXPECT_EQ(a.connect(server->url("/ws/chat/lobby/"), evil).status, 403);
  EXPECT_TRUE(b.connect(server->url("/ws/chat/lobby/"), own).accepted);
  EXPECT_TRUE(c.connect(server->url("/ws/chat/lobby/"), local).accepted);
  EXPECT_TRUE(d.connect(server->url("/ws/chat/lobby/")).accepted);  // no Origin: not a browser
}
