#include "delivery_window.hpp"

#include <mutex>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>

namespace channels::detail {

std::atomic<std::uint64_t> DeliveryWindow::pushes_{0};

struct DeliveryWindow::Window {
  boost::asio::any_io_executor executor;
  boost::asio::execution_context* context = nullptr;
  std::chrono::steady_clock::time_point opened;
  std::uint64_t pushes_seen = 0;
  std::mutex mutex;  // threads may add while another checks
  bool closed = false;
  std::vector<std::shared_ptr<Drainable>> targets;
};

thread_local std::weak_ptr<DeliveryWindow::Window> DeliveryWindow::current_;

namespace {

boost::asio::execution_context* context_of(const boost::asio::any_io_executor& ex) {
  return &boost::asio::query(ex, boost::asio::execution::context);
}

}  // namespace

void DeliveryWindow::add(std::shared_ptr<Drainable> target) {
  const auto& ex = target->strand.get_inner_executor();
  auto* context = context_of(ex);
  if (auto w = current_.lock()) {
    std::lock_guard lock(w->mutex);
    // Only targets of the window's own io_context: a window checked on an
    // io_context that stops must not strand another one's consumers.
    if (!w->closed && w->context == context) {
      w->targets.push_back(std::move(target));
      return;
    }
  }
  auto w = std::make_shared<Window>();
  w->executor = ex;
  w->context = context;
  w->opened = std::chrono::steady_clock::now();
  w->pushes_seen = pushes_.load(std::memory_order_relaxed);
  w->targets.push_back(std::move(target));
  current_ = w;
  boost::asio::post(w->executor, [w] { check(w); });
}

void DeliveryWindow::check(const std::shared_ptr<Window>& w) {
  std::vector<std::shared_ptr<Drainable>> due;
  {
    std::lock_guard lock(w->mutex);
    auto pushes = pushes_.load(std::memory_order_relaxed);
    bool quiet = pushes == w->pushes_seen;
    w->pushes_seen = pushes;
    if (!quiet && std::chrono::steady_clock::now() - w->opened < max_delay) {
      boost::asio::post(w->executor, [w] { check(w); });
      return;
    }
    w->closed = true;
    due.swap(w->targets);
  }
  // Not on any strand here: an idle strand runs its target right away,
  // without another trip through the event loop.
  for (auto& t : due) {
    const Strand& strand = t->strand;
    boost::asio::dispatch(strand, [t = std::move(t)] { t->run(); });
  }
}

}  // namespace channels::detail
