// Typed dispatch: "chat.message" runs the handler registered as chat_message;
// an unknown type is logged, naming it and the consumer, and nothing breaks.

#include <channels/consumer.hpp>

#include <sstream>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <channels/detail/consumer_access.hpp>
#include <channels/layers/in_memory.hpp>
#include <channels/log.hpp>
#include <channels/websocket_consumer.hpp>

using namespace channels;

namespace {

struct Chat : WebsocketConsumer {
  Chat() {
    handle("chat.message", &Chat::chat_message);
    handle("user_joined", &Chat::user_joined);  // the method name works too
  }
  void chat_message(const Message& m) { got.push_back("chat_message:" + m["text"].get<std::string>()); }
  void user_joined(const Message&) { got.push_back("user_joined"); }
  std::vector<std::string> got;
};

// Captures what the framework logs while it lives.
struct LogCapture {
  std::ostringstream out;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  LogCapture() { log().sinks().push_back(sink); }
  ~LogCapture() { log().sinks().pop_back(); }
};

}  // namespace

TEST(HandlerName, DotsBecomeUnderscores) {
  EXPECT_EQ(handler_name("chat.message"), "chat_message");
  EXPECT_EQ(handler_name("a.b.c"), "a_b_c");
  EXPECT_EQ(handler_name("plain"), "plain");
  EXPECT_EQ(handler_name("_private"), "");
  EXPECT_EQ(handler_name(""), "");
}

TEST(Dispatch, TypeSelectsTheHandler) {
  Chat c;
  detail::ConsumerAccess::dispatch(c, {{"type", "chat.message"}, {"text", "hi"}});
  detail::ConsumerAccess::dispatch(c, {{"type", "user.joined"}});
  EXPECT_EQ(c.got, (std::vector<std::string>{"chat_message:hi", "user_joined"}));
}

TEST(Dispatch, UnknownTypeIsLoggedAndTheConsumerCarriesOn) {
  LogCapture capture;
  Chat c;
  detail::ConsumerAccess::set_channel_name(c, "specific.test!abc");
  detail::ConsumerAccess::dispatch(c, {{"type", "no.such"}});
  detail::ConsumerAccess::dispatch(c, {{"text", "no type at all"}});
  detail::ConsumerAccess::dispatch(c, {{"type", "_private"}});
  detail::ConsumerAccess::dispatch(c, {{"type", "chat.message"}, {"text", "still here"}});
  EXPECT_EQ(c.got, (std::vector<std::string>{"chat_message:still here"}));
  std::string logged = capture.out.str();
  EXPECT_NE(logged.find("no handler for message type 'no.such'"), std::string::npos) << logged;
  EXPECT_NE(logged.find("Chat"), std::string::npos) << logged;  // names the consumer
  EXPECT_NE(logged.find("specific.test!abc"), std::string::npos) << logged;
  EXPECT_NE(logged.find("'<missing>'"), std::string::npos) << logged;
  EXPECT_NE(logged.find("handle(\"no.such\""), std::string::npos) << logged;
}

TEST(Dispatch, HandlersForReservedNamesAreRefused) {
  Chat c;
  EXPECT_THROW(c.handle("_x", [](const Message&) {}), std::invalid_argument);
  EXPECT_THROW(c.handle("", [](const Message&) {}), std::invalid_argument);
}

TEST(Dispatch, LayerBeforeConnectionIsAClearError) {
  Chat c;
  try {
    c.channel_layer();
    FAIL() << "expected an error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("on_connect"), std::string::npos);
  }
}

TEST(Dispatch, GroupHelpersUseTheConsumersChannel) {
  boost::asio::io_context ioc;
  auto layer = std::make_shared<InMemoryChannelLayer>();
  Chat c;
  detail::ConsumerAccess::bind(c, Scope{}, layer, Strand(ioc.get_executor()));
  detail::ConsumerAccess::set_channel_name(c, layer->new_channel());
  c.group_add("room");
  EXPECT_EQ(layer->group_size("room"), 1u);
  c.group_send("room", {{"type", "chat.message"}, {"text", "x"}});
  auto m = layer->receive_nowait(c.channel_name());
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["text"], "x");
  c.group_discard("room");
  EXPECT_EQ(layer->group_size("room"), 0u);
}
