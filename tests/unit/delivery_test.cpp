// A group message's text goes to every member as one shared copy: the
// payload a handler sends is the message's own string (aliased), or the
// frame the previous member built for the same message.

#include "delivery.hpp"

#include <gtest/gtest.h>

using namespace channels;
using channels::detail::Delivery;

TEST(Delivery, AFieldOfTheMessageIsSentWithoutACopy) {
  auto msg = std::make_shared<const Message>(Message{{"type", "xx.oo"}, {"text", "hello members"}});
  const auto& field = (*msg)["text"].get_ref<const std::string&>();
  Delivery d(msg);
  auto payload = Delivery::shared_payload(field);
  EXPECT_EQ(payload->data(), field.data());  // the same bytes, not a copy
  EXPECT_EQ(*payload, "hello members");
  // The payload keeps the message alive on its own.
  std::weak_ptr<const Message> weak = msg;
  msg.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(*payload, "hello members");
}

TEST(Delivery, MembersSendingTheSameTextForOneMessageShareOneFrame) {
  auto msg = std::make_shared<const Message>(Message{{"type", "chat.message"}, {"message", "hi"}});
  std::shared_ptr<const std::string> first, second;
  {
    Delivery d(msg);
    first = Delivery::shared_payload(Json{{"message", (*msg)["message"]}}.dump());
  }
  {
    Delivery d(msg);
    second = Delivery::shared_payload(Json{{"message", (*msg)["message"]}}.dump());
  }
  EXPECT_EQ(first, second);
  EXPECT_EQ(*first, R"({"message":"hi"})");
}

TEST(Delivery, DifferentTextOrAnotherMessageGetsItsOwnFrame) {
  auto a = std::make_shared<const Message>(Message{{"type", "t"}});
  auto b = std::make_shared<const Message>(Message{{"type", "t"}});
  std::shared_ptr<const std::string> pa, pa2, pb;
  {
    Delivery d(a);
    pa = Delivery::shared_payload("one");
    pa2 = Delivery::shared_payload("two");
  }
  {
    Delivery d(b);
    pb = Delivery::shared_payload("two");
  }
  EXPECT_EQ(*pa, "one");
  EXPECT_EQ(*pa2, "two");
  EXPECT_EQ(*pb, "two");
  EXPECT_NE(pa2, pb);  // same bytes, but for another message
  // Outside any delivery, a send is a plain copy.
  std::string text = "plain";
  auto p = Delivery::shared_payload(text);
  EXPECT_NE(p->data(), text.data());
  EXPECT_EQ(*p, "plain");
}
