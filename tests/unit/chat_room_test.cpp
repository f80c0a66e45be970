// The chat room's product behaviour through WebsocketCommunicator: joining
// with a name, history, presence (join, leave, expiry), acks and limits.

#include <channels/testing.hpp>

#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <channels/channels.hpp>

#include "consumers.hpp"
#include "hub.hpp"
#include "limits.hpp"

using namespace channels;
using channels::testing::WebsocketCommunicator;
using namespace std::chrono_literals;

namespace {

// How long a frame that must come may take: generous, since the store and the
// layer run on other threads and this suite also runs on loaded machines
// (under sanitizers, beside other tests). Waits end as soon as it arrives.
constexpr auto arrives = 5s;

struct ChatRoom : ::testing::Test {
  std::shared_ptr<chat::Hub> hub = std::make_shared<chat::Hub>(chat::make_memory_store(), "test-server");
  std::shared_ptr<InMemoryChannelLayer> layer = std::make_shared<InMemoryChannelLayer>();

  ApplicationPtr app() {
    auto h = hub;
    return std::make_shared<URLRouter>(std::vector<Route>{
        path("ws/chat/<str:room_name>/",
             std::make_shared<ConsumerApp>([h] { return std::make_unique<chat::ChatConsumer>(h); })),
    });
  }
  std::unique_ptr<WebsocketCommunicator> client(const std::string& room = "r") {
    auto c = std::make_unique<WebsocketCommunicator>(app(), "/ws/chat/" + room + "/",
                                                     WebsocketCommunicator::Options{.layer = layer});
    EXPECT_TRUE(c->connect().accepted);
    return c;
  }
  // Joins and returns the hello.
  Json join(WebsocketCommunicator& c, const std::string& name, const std::string& member = "") {
    Json j{{"type", "join"}, {"name", name}};
    if (!member.empty()) j["member"] = member;
    c.send_json_to(j);
    Json hello = c.receive_json_from(arrives);
    EXPECT_EQ(hello.value("type", ""), "hello") << hello.dump();
    return hello;
  }
  // Reads the member's own join notice. The hello is sent before that notice
  // goes to the group, so a connection opened right after the hello may
  // still hear it (as a not-yet-joined client); read it first.
  static void own_join_notice(WebsocketCommunicator& c) {
    EXPECT_EQ(c.receive_json_from(arrives).value("event", ""), "join");
  }
  // The next chat message (not a notice, not an ack).
  static Json next_non_notice(WebsocketCommunicator& c) {
    for (int i = 0; i < 10; ++i) {
      Json j = c.receive_json_from(arrives);
      if (!j.contains("event") && j.value("type", "") != "ack") return j;
    }
    throw std::runtime_error("only notices and acks arrived");
  }
  // A member's message and its ack, in either order: the ack goes straight
  // to the sender, the message through the channel layer.
  static std::pair<Json, Json> message_and_ack(WebsocketCommunicator& c) {
    Json first = c.receive_json_from(arrives), second = c.receive_json_from(arrives);
    if (first.value("type", "") == "ack") std::swap(first, second);
    return {first, second};
  }
  static std::set<std::string> names(const Json& online) {
    std::set<std::string> out;
    for (const auto& m : online) out.insert(m["name"].get<std::string>());
    return out;
  }
};

TEST_F(ChatRoom, HelloCarriesServerPresenceAndHistoryAndMessagesAreAcked) {
  auto alice = client();
  Json hello = join(*alice, "Alice", "alice-1");
  EXPECT_EQ(hello["server"], "test-server");
  EXPECT_EQ(names(hello["online"]), (std::set<std::string>{"Alice"}));
  EXPECT_TRUE(hello["history"].empty());
  EXPECT_EQ(alice->receive_json_from(arrives)["event"], "join");  // her own notice, through the group

  alice->send_json_to({{"message", "first"}, {"ref", 7}});
  auto [m, ack] = message_and_ack(*alice);
  EXPECT_EQ(m["message"], "first");
  EXPECT_EQ(m["name"], "Alice");
  EXPECT_EQ(m["id"], 1);
  EXPECT_TRUE(m["time"].is_number());
  EXPECT_EQ(ack, (Json{{"type", "ack"}, {"ref", 7}, {"id", 1}}));

  auto bob = client();
  hello = join(*bob, "Bob");
  EXPECT_EQ(names(hello["online"]), (std::set<std::string>{"Alice", "Bob"}));
  ASSERT_EQ(hello["history"].size(), 1u);
  EXPECT_EQ(hello["history"][0]["message"], "first");
  EXPECT_EQ(hello["history"][0]["name"], "Alice");
  Json notice = alice->receive_json_from(arrives);
  EXPECT_EQ(notice["event"], "join");
  EXPECT_EQ(notice["member"]["name"], "Bob");
  EXPECT_EQ(notice["message"], "Bob joined");

  bob->send_json_to({{"message", "hi Alice"}});
  EXPECT_EQ(next_non_notice(*alice)["message"], "hi Alice");
}

TEST_F(ChatRoom, NewcomerGetsTheLastFiftyMessagesOldestFirst) {
  hub->limits.rate = 1e6;  // this test is not about the rate
  hub->limits.burst = 1e6;
  auto alice = client();
  join(*alice, "Alice");
  alice->receive_json_from(arrives);  // own join notice
  for (int i = 1; i <= 60; ++i) {
    alice->send_json_to({{"message", "m" + std::to_string(i)}});
    message_and_ack(*alice);
  }
  auto bob = client();
  Json history = join(*bob, "Bob")["history"];
  ASSERT_EQ(history.size(), 50u);
  EXPECT_EQ(history.front()["message"], "m11");
  EXPECT_EQ(history.back()["message"], "m60");
  EXPECT_EQ(history.back()["id"], 60);
}

TEST_F(ChatRoom, LeavingIsAnnouncedAndRemovedFromPresence) {
  auto alice = client();
  join(*alice, "Alice");
  own_join_notice(*alice);
  auto bob = client();
  join(*bob, "Bob", "bob-1");
  while (alice->receive_json_from(arrives)["member"]["name"] != "Bob") {
  }
  bob->disconnect();
  Json notice = alice->receive_json_from(arrives);
  EXPECT_EQ(notice["event"], "leave");
  EXPECT_EQ(notice["member"]["id"], "bob-1");
  EXPECT_EQ(notice["message"], "Bob left");
  auto carol = client();
  EXPECT_EQ(names(join(*carol, "Carol")["online"]), (std::set<std::string>{"Alice", "Carol"}));
}

TEST_F(ChatRoom, AnOldConnectionOfAMemberWhoReconnectedDoesNotRemoveIt) {
  auto watcher = client();
  join(*watcher, "Watcher");
  own_join_notice(*watcher);
  auto first = client();
  join(*first, "Dana", "dana");
  own_join_notice(*first);
  auto second = client();  // Dana's tab reconnected before the first connection was seen to drop
  join(*second, "Dana", "dana");
  first->disconnect();
  // Two join notices for Dana, and no leave.
  int joins = 0;
  while (auto frame = watcher->receive_from(300ms)) {
    Json j = Json::parse(frame->data);
    EXPECT_NE(j.value("event", ""), "leave") << j.dump();
    joins += j.value("event", "") == "join" && j["member"]["id"] == "dana";
  }
  EXPECT_EQ(joins, 2);
  auto late = client();
  EXPECT_EQ(names(join(*late, "Late")["online"]), (std::set<std::string>{"Dana", "Late", "Watcher"}));
}

TEST_F(ChatRoom, MembersOfADeadProcessExpireAndTheRoomIsTold) {
  hub->presence_ttl = 400ms;
  hub->start_heartbeat(layer, 100ms);
  auto alice = client();
  join(*alice, "Alice");
  alice->receive_json_from(arrives);  // own join notice
  // A member held by a process that died: nobody touches it any more.
  std::error_code ec;
  hub->store().touch({{"r", "ghost", "Ghost", "specific.dead!1"}}, 400ms, [&](std::error_code e, Json) { ec = e; });
  ASSERT_FALSE(ec);
  Json notice = alice->receive_json_from(3s);
  EXPECT_EQ(notice["event"], "leave");
  EXPECT_EQ(notice["member"]["id"], "ghost");
  // Alice is touched by the heartbeat: still online long after her TTL.
  std::this_thread::sleep_for(800ms);
  auto bob = client();
  EXPECT_EQ(names(join(*bob, "Bob")["online"]), (std::set<std::string>{"Alice", "Bob"}));
}

TEST_F(ChatRoom, NamesAndMessagesAreCheckedWithClearErrors) {
  auto c = client();
  for (const std::string& bad : std::vector<std::string>{"", " Eve", "<b>Eve</b>", std::string(33, 'e'), "tab\there"}) {
    c->send_json_to({{"type", "join"}, {"name", bad}});
    Json reply = c->receive_json_from(arrives);
    EXPECT_EQ(reply["field"], "name") << bad;
    EXPECT_NE(reply["error"].get<std::string>().find("1 to 32 characters"), std::string::npos);
  }
  join(*c, "Zoë-Neil_2.0");
  c->receive_json_from(arrives);  // own join notice
  c->send_json_to({{"message", std::string(2001, 'x')}});
  EXPECT_NE(c->receive_json_from(arrives)["error"].get<std::string>().find("at most 2000 characters"), std::string::npos);
  c->send_json_to({{"message", "   "}});
  EXPECT_TRUE(c->receive_json_from(arrives).contains("error"));
  c->send_json_to({{"message", std::string(2000, 'x')}});  // at the limit
  auto [m, ack] = message_and_ack(*c);
  EXPECT_EQ(m["message"].get<std::string>().size(), 2000u);
  EXPECT_EQ(ack["type"], "ack");
  c->send_json_to({{"type", "join"}, {"name", "Again"}});
  EXPECT_NE(c->receive_json_from(arrives)["error"].get<std::string>().find("already joined"), std::string::npos);
}

TEST_F(ChatRoom, AFlooderIsWarnedThenClosedWith1008AndOthersCarryOn) {
  auto flooder = client();
  join(*flooder, "Flood");
  own_join_notice(*flooder);
  auto calm = client();
  join(*calm, "Calm");
  auto drain = [](WebsocketCommunicator& c, int& messages, int& errors) {
    while (auto f = c.receive_from(200ms)) {
      Json j = Json::parse(f->data);
      messages += j.contains("message") && !j.contains("event");
      errors += j.contains("error");
    }
  };
  int messages = 0, errors = 0, calm_messages = 0, calm_errors = 0;
  for (int i = 0; i < 200 && flooder->close_code() == 0; ++i) flooder->send_json_to({{"message", "spam"}});
  drain(*flooder, messages, errors);
  EXPECT_EQ(flooder->close_code(), 1008);
  EXPECT_GE(messages, 20);  // the burst (and what the rate refilled meanwhile)
  EXPECT_LE(messages, 22);
  EXPECT_GE(errors, 9);  // warnings before the tenth refusal in a row closes
  EXPECT_NE(errors, 0);
  drain(*calm, calm_messages, calm_errors);
  EXPECT_EQ(calm_messages, messages);
  EXPECT_EQ(calm_errors, 0);
  calm->send_json_to({{"message", "still fine"}});
  EXPECT_EQ(next_non_notice(*calm)["message"], "still fine");
  EXPECT_EQ(calm->close_code(), 0);
}

TEST_F(ChatRoom, TheTutorialProtocolIsHeldToAMachinesPaceAndClosedIfItFloods) {
  hub->limits.tutorial_burst = 100;  // smaller than the default, to keep the test short
  // The default refill (1,000 a second) outpaces a consumer slowed by a
  // sanitizer, which then never runs dry; at 1 a second the flood is
  // refused however slowly it is handled.
  hub->limits.tutorial_rate = 1;
  auto bot = client();
  auto other = client();
  for (int i = 0; i < 100; ++i) bot->send_json_to({{"message", "m"}});
  for (int i = 0; i < 100; ++i) ASSERT_EQ(other->receive_json_from(arrives), (Json{{"message", "m"}})) << i;
  for (int i = 0; i < 500 && bot->close_code() == 0; ++i) bot->send_json_to({{"message", "m"}});
  // The consumer may still be working through what was sent (a slow build,
  // a loaded machine): read its warnings until it closes.
  for (int i = 0; i < 600 && bot->close_code() == 0 && bot->receive_from(arrives); ++i) {
  }
  EXPECT_EQ(bot->close_code(), 1008);
  EXPECT_EQ(other->close_code(), 0);
}

TEST(ChatLimits, NamesAndCharacters) {
  chat::Limits l;
  EXPECT_EQ(chat::count_chars("héllo ☃"), 7u);
  EXPECT_EQ(chat::check_name("Ann-Marie_2.0", l), "");
  EXPECT_EQ(chat::check_name("李小龙", l), "");
  EXPECT_NE(chat::check_name("a\xC2\x85" "b", l), "");  // U+0085, a control character
  EXPECT_NE(chat::check_name("a/b", l), "");
  EXPECT_TRUE(chat::valid_member_id("m0a1-b_2"));
  EXPECT_FALSE(chat::valid_member_id("m.1"));
  chat::RateLimiter r(2, 3);
  auto t = std::chrono::steady_clock::now();
  EXPECT_TRUE(r.allow(t) && r.allow(t) && r.allow(t));
  EXPECT_FALSE(r.allow(t));
  EXPECT_TRUE(r.allow(t + 600ms));  // 2 a second: one more after half a second
  EXPECT_FALSE(r.allow(t + 600ms));
}

}  // namespace
