// A group message's text goes to every member as one shared copy: the
// payload a handler sends is the message's own string (aliased), or the
// frame an earlier member built for the same message.

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

TEST(Delivery, MembersSendingTheSameJsonForOneMessageShareOneDump) {
  auto msg = std::make_shared<const Message>(Message{{"type", "chat.message"}, {"message", "hi"}});
  std::shared_ptr<const std::string> first, second;
  {
    Delivery d(msg);
    first = Delivery::shared_json({{"message", (*msg)["message"]}});
  }
  {
    Delivery d(msg);
    second = Delivery::shared_json({{"message", (*msg)["message"]}});
  }
  EXPECT_EQ(first, second);
  EXPECT_EQ(*first, R"({"message":"hi"})");
}

TEST(Delivery, JsonThatDumpsDifferentlyGetsItsOwnDump) {
  auto msg = std::make_shared<const Message>(Message{{"type", "t"}});
  Delivery d(msg);
  // Equal as JSON values, different as text: each keeps its own.
  auto one = Delivery::shared_json({{"n", 1}});
  auto one_float = Delivery::shared_json({{"n", 1.0}});
  auto zero = Delivery::shared_json({{"z", 0.0}});
  auto minus_zero = Delivery::shared_json({{"z", -0.0}});
  auto unsigned_one = Delivery::shared_json({{"n", 1u}});
  EXPECT_EQ(*one, R"({"n":1})");
  EXPECT_EQ(*one_float, R"({"n":1.0})");
  EXPECT_EQ(*zero, R"({"z":0.0})");
  EXPECT_EQ(*minus_zero, R"({"z":-0.0})");
  EXPECT_EQ(*unsigned_one, R"({"n":1})");
  // Keys, nesting and order count.
  EXPECT_EQ(*Delivery::shared_json({{"m", {1, 2}}}), R"({"m":[1,2]})");
  EXPECT_EQ(*Delivery::shared_json({{"m", {2, 1}}}), R"({"m":[2,1]})");
  EXPECT_EQ(*Delivery::shared_json({{"k", {{"a", true}}}}), R"({"k":{"a":true}})");
  EXPECT_EQ(*Delivery::shared_json({{"k", {{"b", true}}}}), R"({"k":{"b":true}})");
}

TEST(Delivery, PersonalisedJsonLeavesTheFirstMembersDumpShared) {
  auto msg = std::make_shared<const Message>(Message{{"type", "t"}, {"text", "x"}});
  Delivery d(msg);
  auto a = Delivery::shared_json({{"text", "x"}, {"you", "a"}});
  auto b = Delivery::shared_json({{"text", "x"}, {"you", "b"}});
  auto a2 = Delivery::shared_json({{"text", "x"}, {"you", "a"}});
  EXPECT_EQ(*b, R"({"text":"x","you":"b"})");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, a2);  // the first member's value stays the shared one
  // Another message: a new dump even for the same value.
  auto other = std::make_shared<const Message>(Message{{"type", "t"}});
  Delivery d2(other);
  auto a3 = Delivery::shared_json({{"text", "x"}, {"you", "a"}});
  EXPECT_NE(a, a3);
  EXPECT_EQ(*a3, *a);
}

TEST(Delivery, JsonOutsideADeliveryIsAPlainDump) {
  auto p = Delivery::shared_json({{"plain", true}});
  auto q = Delivery::shared_json({{"plain", true}});
  EXPECT_EQ(*p, R"({"plain":true})");
  EXPECT_NE(p, q);
}

// Each member drains its whole batch before the next: the second member asks
// for the first message's frame after the first member built all of them.
std::vector<MessagePtr> a_burst(int n) {
  std::vector<MessagePtr> burst;
  for (int i = 0; i < n; ++i)
    burst.push_back(std::make_shared<const Message>(Message{{"type", "chat.message"}, {"n", i}}));
  return burst;
}

TEST(Delivery, AfterABurstTheNextMemberFindsEveryMessagesText) {
  auto burst = a_burst(200);
  std::vector<std::shared_ptr<const std::string>> first;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    Delivery d(burst[i]);
    first.push_back(Delivery::shared_payload("n=" + std::to_string(i)));
  }
  int shared = 0;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    Delivery d(burst[i]);
    auto p = Delivery::shared_payload("n=" + std::to_string(i));
    EXPECT_EQ(*p, "n=" + std::to_string(i));
    shared += p == first[i];
  }
  // Two ways per set by address: where three messages of the burst share a
  // set (about one set in a burst of 200), each builds its frame again.
  EXPECT_GE(shared, 180);
}

TEST(Delivery, AfterABurstTheNextMemberFindsEveryMessagesJson) {
  auto burst = a_burst(200);
  std::vector<std::shared_ptr<const std::string>> first;
  for (auto& m : burst) {
    Delivery d(m);
    first.push_back(Delivery::shared_json({{"n", (*m)["n"]}}));
  }
  int shared = 0;
  for (std::size_t i = 0; i < burst.size(); ++i) {
    Delivery d(burst[i]);
    auto p = Delivery::shared_json({{"n", (*burst[i])["n"]}});
    EXPECT_EQ(*p, R"({"n":)" + std::to_string(i) + "}");
    shared += p == first[i];
  }
  EXPECT_GE(shared, 180);
}

TEST(Delivery, FramesKeptForLaterMembersStayWithinTheBudget) {
  std::string big(Delivery::cache_budget() / 8, 'x');
  for (int i = 0; i < 64; ++i) {
    auto m = std::make_shared<const Message>(Message{{"type", "t"}});
    Delivery d(m);
    auto p = Delivery::shared_payload(big + std::to_string(i));
    EXPECT_LE(Delivery::cached_bytes(), Delivery::cache_budget());
  }
  EXPECT_GT(Delivery::cached_bytes(), 0u);
  // A frame larger than the whole budget is never kept.
  auto m = std::make_shared<const Message>(Message{{"type", "t"}});
  Delivery d(m);
  std::string huge(Delivery::cache_budget() + 1, 'y');
  auto first = Delivery::shared_payload(huge);
  auto second = Delivery::shared_payload(huge);
  EXPECT_NE(first, second);
  EXPECT_LE(Delivery::cached_bytes(), Delivery::cache_budget());
}

TEST(Delivery, AFreedMessagesFrameIsNotGivenToANewMessageAtItsAddress) {
  const Message* address = nullptr;
  std::shared_ptr<const std::string> old_frame;
  {
    // Not make_shared: its block would live on with the table's weak_ptr.
    MessagePtr old(new Message{{"type", "t"}});
    address = old.get();
    Delivery d(old);
    old_frame = Delivery::shared_json({{"v", "old"}});
  }
  // Allocate until a new message lands where the old one was (the allocator
  // usually hands the same block straight back).
  std::vector<MessagePtr> keep;
  for (int i = 0; i < 64 && (keep.empty() || keep.back().get() != address); ++i)
    keep.push_back(MessagePtr(new Message{{"type", "t"}}));
  if (keep.back().get() != address) GTEST_SKIP() << "the allocator did not reuse the address";
  Delivery d(keep.back());
  auto fresh = Delivery::shared_json({{"v", "old"}});  // same value, another message
  EXPECT_NE(fresh, old_frame);
  EXPECT_EQ(*fresh, *old_frame);
}
