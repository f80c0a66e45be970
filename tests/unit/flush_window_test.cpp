// When queued writes leave: on the next quiet turn of the loop, once a busy
// connection stops getting frames, and never held by another io_context.

#include "flush_window.hpp"

#include <chrono>
#include <memory>

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

using channels::detail::Flushable;
using channels::detail::FlushWindow;
using namespace std::chrono_literals;

namespace {

struct Target final : Flushable {
  void flush() override { ++flushes; }
  int flushes = 0;
};

TEST(FlushWindow, AQuietLoopFlushesOnTheNextTurn) {
  boost::asio::io_context io;
  auto t = std::make_shared<Target>();
  FlushWindow::add(t, io.get_executor());
  EXPECT_EQ(t->flushes, 0);  // not within the turn that queued it
  io.run_for(2s);
  EXPECT_EQ(t->flushes, 1);
}

TEST(FlushWindow, ATargetOfAnotherIoContextIsNotHeldByThisOnesWindow) {
  boost::asio::io_context stopped, running;
  auto held = std::make_shared<Target>();
  auto other = std::make_shared<Target>();
  // Both queued from one thread, the first opening this thread's window on
  // an io_context that nobody runs.
  FlushWindow::add(held, stopped.get_executor());
  FlushWindow::add(other, running.get_executor());
  running.run_for(2s);
  EXPECT_EQ(other->flushes, 1);
  EXPECT_EQ(held->flushes, 0);
}

}  // namespace
