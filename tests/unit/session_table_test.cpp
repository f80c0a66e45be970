// The server's table of live connections: counts per address, the hand-over
// of an upgrade, slots reused, and only live sessions handed out.

#include "session_table.hpp"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "server_impl.hpp"

using channels::detail::Session;
using channels::detail::SessionTable;

namespace {

struct Fake final : Session {
  void shutdown() override {}
  void abort() override {}
};

std::vector<std::shared_ptr<Session>> live(const SessionTable& t) {
  std::vector<std::shared_ptr<Session>> out;
  t.collect(out);
  return out;
}

TEST(SessionTable, CountsConnectionsPerAddress) {
  SessionTable t;
  auto a = std::make_shared<Fake>(), b = std::make_shared<Fake>(), c = std::make_shared<Fake>();
  EXPECT_EQ(t.add(a->slot, a, "10.0.0.1"), 1u);
  EXPECT_EQ(t.add(b->slot, b, "10.0.0.1"), 2u);
  EXPECT_EQ(t.add(c->slot, c, "10.0.0.2"), 1u);
  EXPECT_EQ(t.add(a->slot, a, "10.0.0.1"), 0u);  // already in: not counted twice
  EXPECT_EQ(t.size(), 3u);
  t.remove(a->slot);
  t.remove(a->slot);  // twice is harmless
  EXPECT_EQ(t.size(), 2u);
  auto d = std::make_shared<Fake>();
  EXPECT_EQ(t.add(d->slot, d, "10.0.0.1"), 2u);  // b and d
  t.remove(b->slot);
  t.remove(d->slot);
  auto e = std::make_shared<Fake>();
  EXPECT_EQ(t.add(e->slot, e, "10.0.0.1"), 1u);  // the address's count went to zero and starts again
}

TEST(SessionTable, AnUpgradeTakesOverTheSlotAndItsAddress) {
  SessionTable t;
  auto http = std::make_shared<Fake>(), ws = std::make_shared<Fake>();
  t.add(http->slot, http, "10.0.0.1");
  t.hand_over(http->slot, ws->slot, ws);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(http->slot.index, channels::detail::SessionSlot::none);
  t.remove(http->slot);  // the HTTP session's destructor: no longer in the table
  EXPECT_EQ(t.size(), 1u);
  auto all = live(t);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], ws);
  auto other = std::make_shared<Fake>();
  EXPECT_EQ(t.add(other->slot, other, "10.0.0.1"), 2u);  // the WebSocket still counts for the address
  t.remove(ws->slot);
  EXPECT_EQ(t.size(), 1u);
  auto again = std::make_shared<Fake>();
  EXPECT_EQ(t.add(again->slot, again, "10.0.0.1"), 2u);  // ws's count was given back
}

TEST(SessionTable, AHandOverFromASessionNotInTheTableAddsWithoutAnAddress) {
  SessionTable t;
  auto http = std::make_shared<Fake>(), ws = std::make_shared<Fake>();
  t.hand_over(http->slot, ws->slot, ws);
  EXPECT_EQ(t.size(), 1u);
  auto other = std::make_shared<Fake>();
  EXPECT_EQ(t.add(other->slot, other, "10.0.0.1"), 1u);
}

TEST(SessionTable, SlotsAreReusedAndOnlyLiveSessionsAreCollected) {
  SessionTable t;
  std::vector<std::shared_ptr<Fake>> s;
  for (int i = 0; i < 5; ++i) {
    s.push_back(std::make_shared<Fake>());
    t.add(s.back()->slot, s.back(), {});
  }
  auto freed = s[2]->slot.index;
  t.remove(s[2]->slot);
  auto n = std::make_shared<Fake>();
  t.add(n->slot, n, {});
  EXPECT_EQ(n->slot.index, freed);
  s[4].reset();  // gone without removing itself yet (its destructor still to run)
  auto all = live(t);
  EXPECT_EQ(all.size(), 4u);
  EXPECT_EQ(t.size(), 5u);
}

}  // namespace
