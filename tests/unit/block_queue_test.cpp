// The inbox's queue: order across blocks, blocks given back as they are
// read, what it holds after a drain, and what it still owns when destroyed.

#include <channels/detail/block_queue.hpp>

#include <algorithm>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

using channels::detail::BlockQueue;

namespace {

TEST(BlockQueue, KeepsOrderAcrossBlocksWhileReadAndWrittenInTurn) {
  BlockQueue<int, 4> q;
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {  // write 7, read 5: the queue creeps over blocks
    for (int i = 0; i < 7; ++i) q.push_back(next_in++);
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(q.front(), next_out++);
      q.pop_front();
    }
    ASSERT_EQ(q.size(), std::size_t(next_in - next_out));
  }
  std::vector<int> rest;
  q.drain([&](int&& v) { rest.push_back(v); });
  ASSERT_EQ(rest.size(), 100u);
  for (int v : rest) EXPECT_EQ(v, next_out++);
  EXPECT_TRUE(q.empty());
}

TEST(BlockQueue, GivesBackEachBlockOnceReadAndKeepsOne) {
  BlockQueue<int, 4> q;
  EXPECT_EQ(q.held_bytes(), 0u);
  q.push_back(0);
  const auto block = q.held_bytes();
  EXPECT_GT(block, 4 * sizeof(int));
  for (int i = 1; i < 10; ++i) q.push_back(i);
  EXPECT_EQ(q.held_bytes(), 3 * block);  // 10 in blocks of 4
  for (int i = 0; i < 4; ++i) q.pop_front();
  EXPECT_EQ(q.held_bytes(), 2 * block);  // the first block, read, went
  for (int i = 4; i < 10; ++i) {
    EXPECT_EQ(q.front(), i);
    q.pop_front();
  }
  EXPECT_EQ(q.held_bytes(), block);  // empty: one kept for the next message
  q.push_back(10);
  EXPECT_EQ(q.front(), 10);
  EXPECT_EQ(q.held_bytes(), block);
  for (int i = 11; i < 30; ++i) q.push_back(i);
  int seen = 0;
  q.drain([&](int&& v) { EXPECT_EQ(v, 10 + seen++); });
  EXPECT_EQ(seen, 20);
  EXPECT_EQ(q.held_bytes(), block);  // a drain too keeps one
  q.shrink_to_fit();
  EXPECT_EQ(q.held_bytes(), 0u);
  q.push_back(1);
  q.shrink_to_fit();  // not while something waits
  EXPECT_EQ(q.held_bytes(), block);
  EXPECT_EQ(q.front(), 1);
}

TEST(BlockQueue, LetsGoOfWhatItHeldWhenReadAndWhenDestroyed) {
  auto a = std::make_shared<int>(1), b = std::make_shared<int>(2);
  {
    BlockQueue<std::shared_ptr<int>, 2> q;
    q.push_back(a);
    q.push_back(b);
    q.push_back(a);  // a second block
    EXPECT_EQ(a.use_count(), 3);
    q.pop_front();
    EXPECT_EQ(a.use_count(), 2);  // not kept in the read slot
    q.push_back(b);
    EXPECT_EQ(b.use_count(), 3);
  }
  EXPECT_EQ(a.use_count(), 1);
  EXPECT_EQ(b.use_count(), 1);
}

TEST(BlockQueue, IsFourWordsLikeTheVectorItReplaced) {
  // One per connection: 10,000 idle connections must stay under 4 KiB each.
  EXPECT_EQ(sizeof(BlockQueue<std::shared_ptr<int>, 16>), 4 * sizeof(void*));
}

TEST(BlockQueue, AgreesWithADequeOverARandomWalk) {
  std::mt19937 rng(20261201);
  BlockQueue<std::shared_ptr<int>, 3> q;
  std::deque<int> model;
  int next = 0;
  BlockQueue<std::shared_ptr<int>, 3> one;
  one.push_back(nullptr);
  const auto block = one.held_bytes();
  for (int step = 0; step < 20000; ++step) {
    switch (rng() % 8) {
      case 0:
      case 1:
      case 2:
      case 3:
        q.push_back(std::make_shared<int>(next));
        model.push_back(next++);
        break;
      case 4:
      case 5:
        if (!model.empty()) {
          ASSERT_EQ(*q.front(), model.front());
          q.pop_front();
          model.pop_front();
        }
        break;
      case 6:
        if (rng() % 16 == 0) {
          std::vector<int> got;
          q.drain([&](std::shared_ptr<int>&& v) { got.push_back(*v); });
          ASSERT_EQ(got, std::vector<int>(model.begin(), model.end()));
          model.clear();
        }
        break;
      default:
        q.shrink_to_fit();
        if (!model.empty()) ASSERT_GT(q.held_bytes(), 0u);
    }
    ASSERT_EQ(q.size(), model.size());
    ASSERT_EQ(q.empty(), model.empty());
    // No block is kept that holds nothing but read slots: n elements span at
    // most ceil((n + 2) / 3) blocks of 3, an empty queue one or none.
    ASSERT_EQ(q.held_bytes() % block, 0u);
    ASSERT_LE(q.held_bytes() / block, std::max<std::size_t>(1, (q.size() + 4) / 3));
  }
}

}  // namespace
