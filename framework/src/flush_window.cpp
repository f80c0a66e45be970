#include "flush_window.hpp"

#include <boost/asio/post.hpp>

namespace channels::detail {

std::atomic<std::uint64_t> FlushWindow::more_{0};

struct FlushWindow::Window {
  boost::asio::any_io_executor executor;
  std::chrono::steady_clock::time_point opened;
  std::uint64_t more_seen = 0;
  std::mutex mutex;  // threads may add while another checks
  bool closed = false;
  std::vector<std::shared_ptr<Flushable>> targets;
};

thread_local std::weak_ptr<FlushWindow::Window> FlushWindow::current_;

void FlushWindow::add(std::shared_ptr<Flushable> target, const boost::asio::any_io_executor& ex) {
  auto w = current_.lock();
  if (w) {
    std::lock_guard lock(w->mutex);
    if (!w->closed) {
      w->targets.push_back(std::move(target));
      return;
    }
  }
  w = std::make_shared<Window>();
  w->executor = ex;
  w->opened = std::chrono::steady_clock::now();
  w->more_seen = more_.load(std::memory_order_relaxed);
  w->targets.push_back(std::move(target));
  current_ = w;
  boost::asio::post(ex, [w] { check(w); });
}

void FlushWindow::check(const std::shared_ptr<Window>& w) {
  std::vector<std::shared_ptr<Flushable>> targets;
  {
    std::lock_guard lock(w->mutex);
    auto more = more_.load(std::memory_order_relaxed);
    if (more != w->more_seen && std::chrono::steady_clock::now() - w->opened < max_delay) {
      // Connections in the window got more frames this turn: one more turn.
      w->more_seen = more;
      boost::asio::post(w->executor, [w] { check(w); });
      return;
    }
    w->closed = true;
    targets.swap(w->targets);
  }
  for (auto& t : targets) t->flush();
}

}  // namespace channels::detail
