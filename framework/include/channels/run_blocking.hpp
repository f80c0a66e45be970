#pragma once
// run_blocking: Channels' database_sync_to_async for coroutine consumers.
// A blocking call (a database driver, a file, a slow library) runs on a
// separate thread pool, and the coroutine resumes on the strand it came
// from, so the consumer's code stays on its own strand and no I/O thread
// is ever blocked.
//
//   awaitable<void> receive(std::string text) override {
//     auto row = co_await channels::run_blocking([&] { return db.lookup(text); });
//     co_await send(row);                       // back on the strand
//   }
//
// An exception thrown by the call is rethrown in the coroutine.

#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace channels {

/// The pool run_blocking(fn) uses when given none: created on first use with
/// `threads` threads (the first call's value counts; default 4), joined at
/// exit. A host that wants its own pool (or a bound per server) passes one.
boost::asio::thread_pool& default_blocking_pool(unsigned threads = 4);

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(boost::asio::thread_pool& pool, F fn) {
  namespace net = boost::asio;
  using R = std::invoke_result_t<F&>;
  std::exception_ptr error;
  // The result lives in this coroutine's frame, which stays put while it is
  // suspended; the pool thread writes it before resuming the coroutine.
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> result{};
  co_await net::async_initiate<const net::use_awaitable_t<>&, void()>(
      [&pool, &fn, &result, &error](auto handler) {
        net::post(pool, [h = std::move(handler), &fn, &result, &error]() mutable {
          try {
            if constexpr (std::is_void_v<R>)
              fn();
            else
              result.emplace(fn());
          } catch (...) {
            error = std::current_exception();
          }
          // The handler's executor is the coroutine's (the strand): resume there.
          // The work guard keeps its io_context from running out of work
          // until dispatch() has returned: the strand may run the coroutine
          // to its end, and its owner tear the io_context down, while this
          // thread is still signalling the scheduler.
          auto ex = net::get_associated_executor(h);
          auto work = net::make_work_guard(ex);
          net::dispatch(ex, std::move(h));
        });
      },
      net::use_awaitable);
  if (error) std::rethrow_exception(error);
  if constexpr (!std::is_void_v<R>) co_return std::move(*result);
}

template <class F>
boost::asio::awaitable<std::invoke_result_t<F&>> run_blocking(F fn) {
  return run_blocking(default_blocking_pool(), std::move(fn));
}

}  // namespace channels
