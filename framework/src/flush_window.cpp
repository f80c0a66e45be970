#include "flush_window.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>

namespace channels::detail {

std::atomic<std::uint64_t> FlushWindow::more_{0};

struct FlushWindow::Window {
  boost::asio::any_io_executor executor;
  boost::asio::execution_context* context = nullptr;
  std::chrono::steady_clock::time_point opened;
  std::uint64_t more_seen = 0;
  std::mutex mutex;  // threads may add while another checks
  bool closed = false;
  struct Entry {
    std::shared_ptr<Flushable> target;
    std::uint64_t frames_seen;
    bool checked = false;
  };
  std::vector<Entry> targets;
};

thread_local std::weak_ptr<FlushWindow::Window> FlushWindow::current_;

void FlushWindow::add(std::shared_ptr<Flushable> target, const boost::asio::any_io_executor& ex) {
  auto* context = &boost::asio::query(ex, boost::asio::execution::context);
  auto w = current_.lock();
  if (w) {
    std::lock_guard lock(w->mutex);
    // Only targets of the window's own io_context: a window checked on an
    // io_context that stops must not keep another one's bytes from leaving.
    if (!w->closed && w->context == context) {
      auto seen = target->frames.load(std::memory_order_relaxed);
      w->targets.push_back({std::move(target), seen});
      return;
    }
  }
  w = std::make_shared<Window>();
  w->executor = ex;
  w->context = context;
  w->opened = std::chrono::steady_clock::now();
  w->more_seen = more_.load(std::memory_order_relaxed);
  auto seen = target->frames.load(std::memory_order_relaxed);
  w->targets.push_back({std::move(target), seen});
  current_ = w;
  boost::asio::post(ex, [w] { check(w); });
}

void FlushWindow::check(const std::shared_ptr<Window>& w) {
  std::vector<std::shared_ptr<Flushable>> due;
  {
    std::lock_guard lock(w->mutex);
    auto more = more_.load(std::memory_order_relaxed);
    bool quiet = more == w->more_seen;
    bool expired = std::chrono::steady_clock::now() - w->opened >= max_delay;
    w->more_seen = more;
    std::vector<Window::Entry> waiting;
    for (auto& e : w->targets) {
      auto frames = e.target->frames.load(std::memory_order_relaxed);
      if (quiet || expired || (e.checked && frames == e.frames_seen)) {
        due.push_back(std::move(e.target));
      } else {
        waiting.push_back({std::move(e.target), frames, true});
      }
    }
    w->targets = std::move(waiting);
    if (w->targets.empty())
      w->closed = true;
    else
      boost::asio::post(w->executor, [w] { check(w); });
  }
  for (auto& t : due) t->flush();
}

}  // namespace channels::detail
