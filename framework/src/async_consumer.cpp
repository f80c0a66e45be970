#include <channels/async_consumer.hpp>

#include <system_error>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/core/demangle.hpp>

#include <channels/detail/consumer_access.hpp>
#include <channels/log.hpp>
#include <channels/run_blocking.hpp>

#include "delivery.hpp"
#include "json_frame.hpp"

namespace channels {

namespace net = boost::asio;

namespace {

// Awaits a channel-layer call that reports through a callback, which may run
// inline or on another thread: the coroutine always resumes on its own
// executor (the strand), via post, so it never runs on a layer's thread.
// `start(done)` makes the call; `Result` is what `done` is called with.
template <class Result, class Start>
awaitable<Result> layer_call(Start start) {
  const auto token = net::as_tuple(net::use_awaitable);
  auto [error, result] = co_await net::async_initiate<decltype(token), void(std::exception_ptr, Result)>(
      [&start](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto resume = [h](std::exception_ptr e, Result r) {
          auto ex = net::get_associated_executor(*h);
          net::post(ex, [h, e, r = std::move(r)]() mutable { std::move(*h)(e, std::move(r)); });
        };
        try {
          start([resume](Result r) { resume(nullptr, std::move(r)); });
        } catch (...) {
          resume(std::current_exception(), Result{});
        }
      },
      token);
  if (error) std::rethrow_exception(error);
  co_return result;
}

}  // namespace

awaitable<void> AsyncWebsocketConsumer::connect() {
  accept();
  co_return;
}
awaitable<void> AsyncWebsocketConsumer::receive(std::string) { co_return; }
awaitable<void> AsyncWebsocketConsumer::receive_bytes(std::string) { co_return; }
awaitable<void> AsyncWebsocketConsumer::disconnect(int) { co_return; }

awaitable<void> AsyncWebsocketConsumer::group_add(std::string group) {
  auto ec = co_await layer_call<std::error_code>(
      [&](auto done) { WebsocketConsumer::group_add(group, std::move(done)); });
  if (ec) throw std::system_error(ec, "group_add(" + group + ")");
}

awaitable<void> AsyncWebsocketConsumer::group_discard(std::string group) {
  auto ec = co_await layer_call<std::error_code>(
      [&](auto done) { WebsocketConsumer::group_discard(group, std::move(done)); });
  if (ec) throw std::system_error(ec, "group_discard(" + group + ")");
}

awaitable<GroupSendResult> AsyncWebsocketConsumer::group_send(std::string group, Message msg) {
  co_return co_await layer_call<GroupSendResult>(
      [&](auto done) { WebsocketConsumer::group_send(group, std::move(msg), std::move(done)); });
}

awaitable<std::error_code> AsyncWebsocketConsumer::channel_send(std::string channel, Message msg) {
  auto ec = co_await layer_call<std::error_code>(
      [&](auto done) { channel_layer().send(channel, std::move(msg), std::move(done)); });
  if (ec && ec != make_error_code(LayerError::channel_full))
    throw std::system_error(ec, "send to channel " + channel);
  co_return ec;
}

awaitable<SendStatus> AsyncWebsocketConsumer::send(std::string text) {
  co_return WebsocketConsumer::send(text);
}

awaitable<SendStatus> AsyncWebsocketConsumer::send_bytes(std::string bytes) {
  co_return WebsocketConsumer::send_bytes(bytes);
}

void AsyncWebsocketConsumer::on_connect() {
  enqueue([this] { return connect(); }, false);
}
void AsyncWebsocketConsumer::on_receive(std::string_view text) {
  enqueue([this, t = std::string(text)] { return receive(t); }, false);
}
void AsyncWebsocketConsumer::on_receive_bytes(std::string_view bytes) {
  enqueue([this, b = std::string(bytes)] { return receive_bytes(b); }, false);
}
void AsyncWebsocketConsumer::on_disconnect(int code) {
  enqueue([this, code] { return disconnect(code); }, true);
}

void AsyncWebsocketConsumer::enqueue(std::function<awaitable<void>()> run, bool is_disconnect) {
  // The coroutine holds the connection alive until it finishes, so `this`
  // outlives every co_await. No owner means the connection is being torn
  // down (the server stopped mid-connection): nothing can run any more.
  auto alive = keep_alive();
  if (!alive) {
    log().debug("{}: connection already destroyed, {} not run", scope().path,
                is_disconnect ? "disconnect()" : "an event");
    return;
  }
  events_.push_back({std::move(run), is_disconnect});
  if (running_) return;  // the running drain takes it, in order
  running_ = true;
  net::co_spawn(executor(), drain(std::move(alive)), net::detached);
}

awaitable<void> AsyncWebsocketConsumer::drain(std::shared_ptr<void> keep_alive) {
  // One event at a time: the next one starts only when this one's coroutine
  // has returned, however many times it was suspended.
  while (!events_.empty()) {
    Event ev = std::move(events_.front());
    events_.pop_front();
    if (failed_ && !ev.is_disconnect) continue;  // the connection is closing with 1011
    std::string what;
    try {
      co_await ev.run();
      continue;
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception that is not a std::exception";
    }
    {
      log().error("{} for {} {}:{} threw: {}; {}", boost::core::demangle(typeid(*this).name()), scope().path,
                  scope().client.host, scope().client.port, what,
                  ev.is_disconnect ? "in disconnect()" : "closing the connection with 1011");
      if (!ev.is_disconnect) {
        failed_ = true;
        close(close_code::internal_error, "internal server error");
      }
    }
  }
  running_ = false;
  keep_alive.reset();
}

awaitable<void> AsyncJsonWebsocketConsumer::receive_json(Json) { co_return; }

awaitable<SendStatus> AsyncJsonWebsocketConsumer::send_json(Json content) {
  // As JsonWebsocketConsumer::send_json: members sending the same JSON for
  // one group message share one dump.
  co_return detail::ConsumerAccess::send_frame(*this, detail::Delivery::shared_json(content), false);
}

awaitable<void> AsyncJsonWebsocketConsumer::receive(std::string text) {
  detail::JsonFrame frame = detail::parse_json_frame(text, json_max_depth);
  if (frame.close_code) {
    close(frame.close_code, frame.reason);
    co_return;
  }
  co_await receive_json(std::move(frame.content));
}

awaitable<void> AsyncJsonWebsocketConsumer::receive_bytes(std::string) {
  close(close_code::unsupported_data, "binary frames are not accepted: send JSON as text frames");
  co_return;
}

net::thread_pool& default_blocking_pool(unsigned threads) {
  static net::thread_pool pool(threads ? threads : 1);
  return pool;
}

}  // namespace channels
