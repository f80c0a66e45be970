// When woken consumers are drained: right away on a quiet loop, after the
// pushes stop on a busy one (so that a burst reaches each member as one
// batch), never later than max_delay, and never held by another io_context.

#include "delivery_window.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

using channels::Strand;
using channels::detail::DeliveryWindow;
using channels::detail::Drainable;
using namespace std::chrono_literals;

namespace {

struct Target final : Drainable {
  explicit Target(boost::asio::io_context& io) : Drainable(boost::asio::make_strand(io.get_executor())) {}
  void run() override {
    ++runs;
    on_strand = strand.running_in_this_thread();
    if (then) then();
  }
  int runs = 0;
  bool on_strand = false;
  std::function<void()> then;
};

// Runs `turn` in one handler after another until it returns false: a loop
// that is busy for as many turns. Bounded by the caller.
void keep_busy(boost::asio::io_context& io, std::function<bool()> turn) {
  boost::asio::post(io, [&io, turn = std::move(turn)]() mutable {
    if (turn()) keep_busy(io, std::move(turn));
  });
}

TEST(DeliveryWindow, AQuietLoopDrainsOnTheNextTurnOnTheTargetsStrand) {
  boost::asio::io_context io;
  auto t = std::make_shared<Target>(io);
  boost::asio::post(io, [&] { DeliveryWindow::add(t); });
  io.run_for(2s);
  EXPECT_EQ(t->runs, 1);
  EXPECT_TRUE(t->on_strand);
}

TEST(DeliveryWindow, ABusyLoopDrainsOnceThePushesStop) {
  boost::asio::io_context io;
  auto t = std::make_shared<Target>(io);
  int turns = 0, turns_when_run = -1;
  t->then = [&] { turns_when_run = turns; };
  // Woken by a group_send that goes on pushing to the other members.
  DeliveryWindow::add(t);
  DeliveryWindow::note_push();
  // A sender whose messages keep arriving for 50 turns (far less than
  // max_delay on any machine: each turn does nothing but count).
  keep_busy(io, [&] {
    DeliveryWindow::note_push();
    return ++turns < 50;
  });
  io.run_for(5s);
  EXPECT_EQ(t->runs, 1);
  EXPECT_GE(turns_when_run, 49) << "drained while messages were still arriving";
}

TEST(DeliveryWindow, ALoopThatNeverGoesQuietStillDrainsWithinMaxDelay) {
  boost::asio::io_context io;
  auto t = std::make_shared<Target>(io);
  auto started = std::chrono::steady_clock::now();
  auto waited = std::chrono::steady_clock::duration::max();
  t->then = [&] { waited = std::chrono::steady_clock::now() - started; };
  DeliveryWindow::add(t);
  DeliveryWindow::note_push();
  // Pushes until the target has run, or for 20 times max_delay (then the
  // loop goes quiet, and the target runs for that reason: a failure).
  keep_busy(io, [&] {
    DeliveryWindow::note_push();
    return t->runs == 0 && std::chrono::steady_clock::now() - started < 20 * DeliveryWindow::max_delay;
  });
  io.run_for(5s);
  EXPECT_EQ(t->runs, 1);
  EXPECT_GE(waited, DeliveryWindow::max_delay) << "drained while messages were still arriving";
  EXPECT_LT(waited, 20 * DeliveryWindow::max_delay) << "drained only once the pushes stopped";
}

TEST(DeliveryWindow, ATargetOfAnotherIoContextIsNotHeldByThisOnesWindow) {
  boost::asio::io_context stopped, running;
  auto held = std::make_shared<Target>(stopped);
  auto other = std::make_shared<Target>(running);
  // Both woken from one thread, the first opening this thread's window on
  // an io_context that nobody runs.
  DeliveryWindow::add(held);
  DeliveryWindow::add(other);
  running.run_for(2s);
  EXPECT_EQ(other->runs, 1);
  EXPECT_EQ(held->runs, 0);
}

}  // namespace
