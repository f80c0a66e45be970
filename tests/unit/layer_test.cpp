// InMemoryChannelLayer: Channels' semantics for capacity, expiry, groups and names.

#include <channels/layers/in_memory.hpp>

#include <gtest/gtest.h>

#include <channels/errors.hpp>

using namespace channels;
using namespace std::chrono_literals;

namespace {

// A clock the test moves by hand.
struct FakeClock {
  Inbox::Clock::time_point t = Inbox::Clock::time_point{} + 1000h;
  InMemoryChannelLayer::Clock fn() {
    return [this] { return t; };
  }
};

Message msg(std::string type, int n = 0) { return {{"type", std::move(type)}, {"n", n}}; }

}  // namespace

TEST(InMemoryLayer, SendThenReceiveInOrder) {
  InMemoryChannelLayer layer;
  auto ch = layer.new_channel();
  layer.send(ch, msg("a.b", 1));
  layer.send(ch, msg("a.b", 2));
  auto m1 = layer.receive_nowait(ch);
  auto m2 = layer.receive_nowait(ch);
  ASSERT_TRUE(m1 && m2);
  EXPECT_EQ((*m1)["n"], 1);
  EXPECT_EQ((*m2)["n"], 2);
  EXPECT_EQ(layer.receive_nowait(ch), nullptr);
}

TEST(InMemoryLayer, NewChannelsAreDistinctAndValid) {
  InMemoryChannelLayer layer;
  auto a = layer.new_channel(), b = layer.new_channel("http.response");
  EXPECT_NE(a, b);
  EXPECT_TRUE(valid_channel_name(a));
  EXPECT_EQ(b.rfind("http.response.", 0), 0u);
  EXPECT_NE(a.find('!'), std::string::npos);
}

TEST(InMemoryLayer, FullChannelDropsAndReportsWithoutBlocking) {
  InMemoryChannelLayer layer({.capacity = 3});
  auto ch = layer.new_channel();
  std::vector<std::error_code> results;
  for (int i = 0; i < 5; ++i) layer.send(ch, msg("x", i), [&](std::error_code ec) { results.push_back(ec); });
  ASSERT_EQ(results.size(), 5u);
  EXPECT_FALSE(results[0]);
  EXPECT_FALSE(results[2]);
  EXPECT_EQ(results[3], LayerError::channel_full);
  EXPECT_EQ(results[4], LayerError::channel_full);
  EXPECT_EQ(layer.stats().dropped_full, 2u);
  // The first three are kept; the late ones are the ones dropped.
  for (int i = 0; i < 3; ++i) EXPECT_EQ((*layer.receive_nowait(ch))["n"], i);
  EXPECT_EQ(layer.receive_nowait(ch), nullptr);
}

TEST(InMemoryLayer, GroupSendSkipsFullMembersOnly) {
  InMemoryChannelLayer layer({.capacity = 1});
  auto full = layer.new_channel(), free = layer.new_channel();
  layer.group_add("g", full);
  layer.group_add("g", free);
  layer.send(full, msg("fill"));
  GroupSendResult r;
  layer.group_send("g", msg("hello"), [&](GroupSendResult res) { r = res; });
  EXPECT_EQ(r.delivered, 1u);
  EXPECT_EQ(r.dropped, 1u);
  EXPECT_EQ((*layer.receive_nowait(free))["type"], "hello");
  EXPECT_EQ((*layer.receive_nowait(full))["type"], "fill");
  EXPECT_EQ(layer.receive_nowait(full), nullptr);
}

TEST(InMemoryLayer, GroupMembersShareOneCopy) {
  InMemoryChannelLayer layer;
  std::vector<std::string> chans;
  for (int i = 0; i < 3; ++i) {
    chans.push_back(layer.new_channel());
    layer.group_add("room", chans.back());
  }
  layer.group_send("room", msg("chat.message"));
  auto a = layer.receive_nowait(chans[0]), b = layer.receive_nowait(chans[1]), c = layer.receive_nowait(chans[2]);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(b.get(), c.get());
}

TEST(InMemoryLayer, DiscardLeavesTheGroup) {
  InMemoryChannelLayer layer;
  auto a = layer.new_channel(), b = layer.new_channel();
  layer.group_add("g", a);
  layer.group_add("g", b);
  layer.group_add("g", b);  // twice is once
  EXPECT_EQ(layer.group_size("g"), 2u);
  layer.group_discard("g", a);
  layer.group_discard("g", a);  // twice is harmless
  layer.group_discard("nobody", a);
  EXPECT_EQ(layer.group_size("g"), 1u);
  layer.group_send("g", msg("x"));
  EXPECT_EQ(layer.receive_nowait(a), nullptr);
  EXPECT_NE(layer.receive_nowait(b), nullptr);
}

TEST(InMemoryLayer, MessagesExpireUnread) {
  FakeClock clock;
  InMemoryChannelLayer layer({.expiry = 60s}, clock.fn());
  auto ch = layer.new_channel();
  layer.send(ch, msg("old"));
  clock.t += 30s;
  layer.send(ch, msg("new"));
  clock.t += 31s;  // "old" is 61 s old, "new" 31 s
  auto m = layer.receive_nowait(ch);
  ASSERT_TRUE(m);
  EXPECT_EQ((*m)["type"], "new");
  clock.t += 60s;
  layer.send(ch, msg("fresh"));
  EXPECT_EQ((*layer.receive_nowait(ch))["type"], "fresh");
}

TEST(InMemoryLayer, AChannelWhoseMessagesExpireLeavesItsGroups) {
  FakeClock clock;
  InMemoryChannelLayer layer({.expiry = 10s}, clock.fn());
  auto dead = layer.new_channel(), live = layer.new_channel();
  layer.group_add("g", dead);
  layer.group_add("g", live);
  layer.group_send("g", msg("x"));
  layer.receive_nowait(live);  // `live` reads, `dead` never does
  clock.t += 11s;
  layer.group_send("g", msg("y"));  // the sweep finds dead's message expired
  EXPECT_EQ(layer.group_size("g"), 1u);
  EXPECT_EQ((*layer.receive_nowait(live))["type"], "y");
}

TEST(InMemoryLayer, AnUnreadChannelIsForgottenOnceItsMessagesExpire) {
  FakeClock clock;
  InMemoryChannelLayer layer({.expiry = 10s}, clock.fn());
  auto unread = layer.new_channel(), other = layer.new_channel();
  layer.send(unread, msg("x"));
  layer.send(unread, msg("y"));
  EXPECT_EQ(layer.channel_count(), 1u);
  clock.t += 11s;
  layer.send(other, msg("z"));  // the sweep drops x and y, then forgets `unread`
  EXPECT_EQ(layer.channel_count(), 1u);
  EXPECT_EQ(layer.stats().dropped_expired, 2u);
  EXPECT_EQ(layer.receive_nowait(unread), nullptr);
}

TEST(InMemoryLayer, AnAttachedChannelIsNotForgottenAndItsExpiredMessagesAreCounted) {
  FakeClock clock;
  InMemoryChannelLayer layer({.expiry = 10s}, clock.fn());
  auto ch = layer.new_channel(), other = layer.new_channel();
  layer.send(ch, msg("early"));  // before anyone attached
  auto inbox = layer.attach(ch);
  layer.group_add("g", ch);
  layer.send(ch, msg("late"));
  clock.t += 11s;
  layer.send(other, msg("z"));  // a sweep: `ch` is attached, so it keeps its queue and its group
  EXPECT_EQ(layer.channel_count(), 2u);
  EXPECT_EQ(layer.group_size("g"), 1u);
  // The reader drops what expired as it reads; the layer's stats count it.
  EXPECT_TRUE(inbox->take_all(clock.t, 10s).empty());
  EXPECT_EQ(layer.stats().dropped_expired, 2u);
  layer.detach(ch);
  EXPECT_EQ(layer.stats().dropped_expired, 2u);  // still counted once the channel is gone
  EXPECT_EQ(layer.channel_count(), 1u);
}

TEST(InMemoryLayer, GroupMembershipsExpire) {
  FakeClock clock;
  InMemoryChannelLayer layer({.group_expiry = 100s}, clock.fn());
  auto a = layer.new_channel(), b = layer.new_channel();
  layer.group_add("g", a);
  clock.t += 60s;
  layer.group_add("g", b);
  clock.t += 50s;  // a joined 110 s ago, b 50 s ago
  EXPECT_EQ(layer.group_size("g"), 1u);
  GroupSendResult r;
  layer.group_send("g", msg("x"), [&](GroupSendResult res) { r = res; });
  EXPECT_EQ(r.delivered, 1u);
  EXPECT_EQ(layer.receive_nowait(a), nullptr);
  EXPECT_NE(layer.receive_nowait(b), nullptr);
  // Adding again renews a membership.
  layer.group_add("g", a);
  clock.t += 60s;
  EXPECT_EQ(layer.group_size("g"), 1u);  // a renewed 60 s ago; b expired
}

TEST(InMemoryLayer, ExpiredMembershipsAreForgotten) {
  FakeClock clock;
  InMemoryChannelLayer layer({.group_expiry = 100s}, clock.fn());
  auto a = layer.new_channel(), b = layer.new_channel(), other = layer.new_channel();
  layer.attach(a);
  layer.attach(b);
  layer.group_add("old", a);
  layer.group_add("both", a);
  layer.send(other, msg("x"));
  clock.t += 60s;
  layer.group_add("both", b);
  clock.t += 50s;  // a's memberships are 110 s old, b's 50 s
  layer.send(other, msg("y"));  // a sweep, with the group pass due
  auto s = layer.stats();
  EXPECT_EQ(s.groups, 1u);  // "old" had only a
  EXPECT_EQ(s.group_members, 1u);
}

TEST(InMemoryLayer, ADrainedInboxGivesBackWhatABurstGrew) {
  InMemoryChannelLayer layer;
  auto ch = layer.new_channel();
  auto inbox = layer.attach(ch);
  EXPECT_EQ(inbox->held_bytes(), 0u);  // nothing until a message comes
  for (int i = 0; i < 3; ++i) layer.send(ch, msg("small", i));
  EXPECT_EQ(inbox->take_all(Inbox::Clock::now(), 60s).size(), 3u);
  const auto small = inbox->held_bytes();
  EXPECT_GT(small, 0u);  // a block kept: steady traffic does not allocate each time
  for (int i = 0; i < 90; ++i) layer.send(ch, msg("burst", i));
  inbox->trim();  // not while messages wait
  EXPECT_EQ(inbox->size(), 90u);
  const auto burst = inbox->held_bytes();
  EXPECT_GT(burst, 3 * small);
  auto all = inbox->take_all(Inbox::Clock::now(), 60s);
  ASSERT_EQ(all.size(), 90u);
  EXPECT_EQ((*all.back())["n"], 89);
  EXPECT_LT(inbox->held_bytes(), burst / 2);  // the drain gave back every block but one
  inbox->trim();
  EXPECT_EQ(inbox->held_bytes(), 0u);  // and a quiet inbox keeps nothing
  layer.send(ch, msg("after"));
  EXPECT_EQ((*layer.receive_nowait(ch))["type"], "after");
}

TEST(InMemoryLayer, AttachedInboxWakesItsReaderOncePerBatch) {
  InMemoryChannelLayer layer;
  auto ch = layer.new_channel();
  auto inbox = layer.attach(ch);
  int wakes = 0;
  inbox->on_wake([&] { ++wakes; });
  layer.send(ch, msg("a"));
  layer.send(ch, msg("b"));
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(inbox->take_all(Inbox::Clock::now(), 60s).size(), 2u);
  layer.send(ch, msg("c"));
  EXPECT_EQ(wakes, 2);
  layer.detach(ch);
  EXPECT_EQ(layer.channel_count(), 0u);
}

TEST(InMemoryLayer, DetachLeavesGroups) {
  InMemoryChannelLayer layer;
  auto ch = layer.new_channel();
  layer.attach(ch);
  layer.group_add("g", ch);
  layer.detach(ch);
  EXPECT_EQ(layer.group_size("g"), 0u);
}

TEST(InMemoryLayer, InvalidNamesAreRejectedWithAClearError) {
  InMemoryChannelLayer layer;
  EXPECT_THROW(layer.group_add("bad group", layer.new_channel()), InvalidName);
  EXPECT_THROW(layer.group_add("g", "bad channel"), InvalidName);
  EXPECT_THROW(layer.group_send(std::string(100, 'a'), msg("x")), InvalidName);
  EXPECT_THROW(layer.send("", msg("x")), InvalidName);
  EXPECT_THROW(layer.send("caf\xc3\xa9", msg("x")), InvalidName);
  EXPECT_NO_THROW(layer.group_send(std::string(99, 'a'), msg("x")));
  try {
    layer.group_add("chat room", "x");
    FAIL() << "expected InvalidName";
  } catch (const InvalidName& e) {
    EXPECT_NE(std::string(e.what()).find("'chat room'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("ASCII letters, digits"), std::string::npos);
  }
}

TEST(Names, ChannelsRules) {
  EXPECT_TRUE(valid_group_name("chat_lobby-1.x"));
  EXPECT_FALSE(valid_group_name("chat lobby"));
  EXPECT_FALSE(valid_group_name("chat!x"));
  EXPECT_FALSE(valid_group_name(""));
  EXPECT_TRUE(valid_channel_name("specific.abc!def"));
  EXPECT_TRUE(valid_channel_name("specific.abc!"));
  EXPECT_FALSE(valid_channel_name("!abc"));
  EXPECT_FALSE(valid_channel_name("a!b!c"));
  EXPECT_FALSE(valid_channel_name(std::string(100, 'a')));
  EXPECT_TRUE(valid_channel_name(std::string(99, 'a')));
}

TEST(InMemoryLayer, ZeroCapacityIsAConfigError) {
  EXPECT_THROW(InMemoryChannelLayer({.capacity = 0}), ConfigError);
}

TEST(InMemoryLayer, AReadersBufferIsBoundedByConsumerBufferNotCapacity) {
  InMemoryChannelLayer layer({.capacity = 2, .consumer_buffer = 5});
  auto idle = layer.new_channel(), live = layer.new_channel();
  auto inbox = layer.attach(live);
  inbox->on_wake([] {});
  int idle_ok = 0, live_ok = 0;
  for (int i = 0; i < 10; ++i) {
    layer.send(idle, msg("x", i), [&](std::error_code ec) { idle_ok += !ec; });
    layer.send(live, msg("x", i), [&](std::error_code ec) { live_ok += !ec; });
  }
  EXPECT_EQ(idle_ok, 2);  // nobody reads: Channels' capacity
  EXPECT_EQ(live_ok, 5);  // a reader's buffer: consumer_buffer
  EXPECT_EQ(layer.stats().dropped_full, 8u + 5u);
}

TEST(InMemoryLayer, DetachLeavesExactlyItsOwnGroups) {
  InMemoryChannelLayer layer;
  auto leaving = layer.new_channel(), staying = layer.new_channel();
  layer.attach(leaving);
  for (int i = 0; i < 50; ++i) layer.group_add("g" + std::to_string(i), staying);
  layer.group_add("g1", leaving);
  layer.group_add("g2", leaving);
  layer.group_add("solo", leaving);
  layer.group_discard("g2", leaving);
  layer.detach(leaving);
  EXPECT_EQ(layer.group_size("g1"), 1u);
  EXPECT_EQ(layer.group_size("g2"), 1u);
  EXPECT_EQ(layer.group_size("solo"), 0u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(layer.group_size("g" + std::to_string(i)), 1u) << i;
  // A channel re-attached under the same name starts with no memberships.
  layer.attach(leaving);
  layer.group_send("g1", msg("x"));
  EXPECT_EQ(layer.receive_nowait(leaving), nullptr);
}
