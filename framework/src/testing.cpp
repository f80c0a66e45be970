#include <channels/testing.hpp>

#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <channels/async_consumer.hpp>
#include <channels/detail/consumer_access.hpp>
#include <channels/detail/transport.hpp>
#include <channels/layers/in_memory.hpp>
#include <channels/log.hpp>
#include <channels/websocket_consumer.hpp>

#include "consumer_link.hpp"

namespace channels::testing {

namespace net = boost::asio;

// Everything the consumer does to its "connection" lands here, in order.
struct WebsocketCommunicator::State : std::enable_shared_from_this<State> {
  net::io_context ioc{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{ioc.get_executor()};
  std::thread thread;
  std::future<void> ran_out;  // ready when the thread's run() has returned
  Strand strand{net::any_io_executor(ioc.get_executor())};
  std::shared_ptr<ChannelLayer> layer;
  std::unique_ptr<WebsocketConsumer> consumer;
  detail::ConsumerLink link;

  std::mutex m;
  std::condition_variable cv;
  std::optional<std::string> accepted;  // the subprotocol, once accepted
  int closed = 0;                       // close code, once closed
  std::deque<ClientMessage> frames;
  bool connected = false;  // on_connect ran, on_disconnect not yet
  bool disconnect_done = false;

  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      log().error("consumer for {} threw: {}; closing with 1011", consumer->scope().path, e.what());
      consumer->close(close_code::internal_error, "internal server error");
    }
  }

  template <class Pred>
  bool wait(std::chrono::milliseconds timeout, Pred pred) {
    std::unique_lock lock(m);
    return cv.wait_for(lock, timeout, pred);
  }

  // A coroutine consumer finishes its queued events (disconnect() included)
  // after the call that queued them: wait for that, so that a test sees
  // their effects, and the io_context is not stopped under them.
  void wait_until_idle(std::chrono::milliseconds timeout) {
    auto* async = dynamic_cast<AsyncWebsocketConsumer*>(consumer.get());
    if (!async) return;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      bool idle = false;
      run_on_strand([&] { idle = async->idle(); });
      if (idle || std::chrono::steady_clock::now() >= deadline) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  // Runs `fn` on the strand and waits until it has run.
  template <class F>
  void run_on_strand(F&& fn) {
    std::mutex done_m;
    std::condition_variable done_cv;
    bool done = false;
    net::post(strand, [&] {
      fn();
      std::lock_guard l(done_m);
      done = true;
      done_cv.notify_one();
    });
    std::unique_lock l(done_m);
    done_cv.wait(l, [&] { return done; });
  }
};

namespace {

class TestTransport final : public detail::WebsocketTransport {
 public:
  explicit TestTransport(std::weak_ptr<WebsocketCommunicator::State> s) : s_(std::move(s)) {}
  void accept(std::string subprotocol) override {
    if (auto s = s_.lock()) {
      std::lock_guard l(s->m);
      s->accepted = std::move(subprotocol);
      s->cv.notify_all();
    }
  }
  SendStatus send(detail::OutFrame frame) override {
    auto s = s_.lock();
    if (!s) return SendStatus::closed;
    std::lock_guard l(s->m);
    if (s->closed) return SendStatus::closed;
    s->frames.push_back({frame.binary, *frame.payload});
    s->cv.notify_all();
    return SendStatus::queued;
  }
  void close(int code, std::string) override {
    if (auto s = s_.lock()) {
      std::lock_guard l(s->m);
      s->closed = code;
      s->cv.notify_all();
    }
  }

 private:
  std::weak_ptr<WebsocketCommunicator::State> s_;
};

}  // namespace

WebsocketCommunicator::WebsocketCommunicator(ApplicationPtr app, std::string_view path)
    : WebsocketCommunicator(std::move(app), path, Options{}) {}

WebsocketCommunicator::WebsocketCommunicator(ApplicationPtr app, std::string_view target, Options options)
    : state_(std::make_shared<State>()) {
  auto& s = *state_;
  s.layer = options.layer ? options.layer : std::make_shared<InMemoryChannelLayer>();
  Scope scope;
  scope.type = "websocket";
  scope.scheme = "ws";
  scope.method = "GET";
  auto q = target.find('?');
  scope.raw_path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) scope.query_string = std::string(target.substr(q + 1));
  scope.path = percent_decode(scope.raw_path);
  for (auto& [k, v] : options.headers) {
    std::string name = k;
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    scope.headers.emplace_back(std::move(name), v);
  }
  scope.subprotocols = options.subprotocols;
  scope.client = {"127.0.0.1", 50000};
  scope.server = {"127.0.0.1", 8000};
  auto consumer = app->route(scope);
  auto* ws = dynamic_cast<WebsocketConsumer*>(consumer.get());
  if (!ws) throw std::invalid_argument("no WebSocket route matches " + std::string(target));
  consumer.release();
  s.consumer.reset(ws);
  detail::ConsumerAccess::bind(*s.consumer, std::move(scope), s.layer, s.strand);
  detail::ConsumerAccess::set_owner(*s.consumer, state_);
  detail::ConsumerAccess::set_transport(*s.consumer, std::make_shared<TestTransport>(state_));
  std::promise<void> run_returned;
  s.ran_out = run_returned.get_future();
  s.thread = std::thread([st = state_.get(), done = std::move(run_returned)]() mutable {
    st->ioc.run();
    done.set_value();
  });
}

WebsocketCommunicator::~WebsocketCommunicator() {
  auto& s = *state_;
  if (s.connected) disconnect(close_code::normal);
  s.wait_until_idle(std::chrono::seconds(1));
  // Let run() return when its work runs out rather than stop() it: another
  // thread (run_blocking's pool) may still be inside a dispatch() to this
  // io_context, holding work until it has returned. A consumer that left a
  // timer pending is stopped after a grace period.
  s.work.reset();
  if (s.thread.joinable()) {
    if (s.ran_out.wait_for(std::chrono::seconds(2)) != std::future_status::ready) s.ioc.stop();
    s.thread.join();
  }
}

ConnectResult WebsocketCommunicator::connect(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  s.run_on_strand([&s, weak = std::weak_ptr<State>(state_)] {
    s.connected = true;
    s.link.open(*s.consumer, s.layer, s.strand, weak, [&s](const Message& msg) {
      s.guarded([&] { detail::ConsumerAccess::dispatch(*s.consumer, msg); });
    });
    s.guarded([&] { s.consumer->on_connect(); });
  });
  s.wait(timeout, [&] { return s.accepted || s.closed; });
  std::lock_guard l(s.m);
  ConnectResult r;
  r.accepted = s.accepted.has_value() && !s.closed;
  if (s.accepted) r.subprotocol = *s.accepted;
  r.close_code = s.closed;
  return r;
}

void WebsocketCommunicator::send_to(std::string_view text) {
  auto& s = *state_;
  s.run_on_strand([&s, t = std::string(text)] {
    if (!s.consumer->closing()) s.guarded([&] { s.consumer->on_receive(t); });
  });
}

void WebsocketCommunicator::send_bytes_to(std::string_view bytes) {
  auto& s = *state_;
  s.run_on_strand([&s, b = std::string(bytes)] {
    if (!s.consumer->closing()) s.guarded([&] { s.consumer->on_receive_bytes(b); });
  });
}

void WebsocketCommunicator::send_json_to(const Json& content) { send_to(content.dump()); }

std::optional<ClientMessage> WebsocketCommunicator::receive_from(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  s.wait(timeout, [&] { return !s.frames.empty() || s.closed; });
  std::lock_guard l(s.m);
  if (s.frames.empty()) return std::nullopt;
  auto f = std::move(s.frames.front());
  s.frames.pop_front();
  return f;
}

Json WebsocketCommunicator::receive_json_from(std::chrono::milliseconds timeout) {
  auto f = receive_from(timeout);
  if (!f) throw std::runtime_error(close_code() ? "the consumer closed with " + std::to_string(close_code())
                                                : "the consumer sent nothing within the timeout");
  Json j = Json::parse(f->data, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("the consumer sent a frame that is not JSON: " + f->data);
  return j;
}

bool WebsocketCommunicator::receive_nothing(std::chrono::milliseconds timeout) {
  auto& s = *state_;
  return !s.wait(timeout, [&] { return !s.frames.empty() || s.closed; });
}

void WebsocketCommunicator::disconnect(int code) {
  auto& s = *state_;
  s.run_on_strand([&s, code] {
    if (!s.connected) return;
    s.connected = false;
    detail::ConsumerAccess::mark_closed(*s.consumer);
    try {
      s.consumer->on_disconnect(code);
    } catch (const std::exception& e) {
      log().error("on_disconnect for {} threw: {}", s.consumer->scope().path, e.what());
    }
    s.link.close(*s.consumer);
  });
  s.wait_until_idle(std::chrono::seconds(5));
}

int WebsocketCommunicator::close_code() const {
  std::lock_guard l(state_->m);
  return state_->closed;
}

ChannelLayer& WebsocketCommunicator::channel_layer() const { return *state_->layer; }
std::string WebsocketCommunicator::channel_name() const { return state_->consumer->channel_name(); }

}  // namespace channels::testing
