#include "connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <fmt/format.h>

#include <channels/log.hpp>

namespace channels::redis {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

class CommandCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "redis"; }
  std::string message(int ev) const override {
    switch (static_cast<CommandError>(ev)) {
      case CommandError::ok: return "ok";
      case CommandError::not_connected: return "not connected to Redis (reconnecting)";
      case CommandError::disconnected: return "the Redis connection was lost before the reply";
      case CommandError::timed_out: return "Redis did not reply in time (the connection was dropped)";
    }
    return "unknown Redis error";
  }
};

}  // namespace

std::error_code make_error_code(CommandError e) {
  static const CommandCategory category;
  return {static_cast<int>(e), category};
}

// Bridges hiredis' event hooks to Asio: hiredis says which readiness it wants
// (read, write), Asio waits for it on the same file descriptor and calls
// hiredis' handlers. hiredis owns the descriptor: Asio never closes it.
struct Connection::Watcher : std::enable_shared_from_this<Watcher> {
  Watcher(net::io_context& ioc, redisAsyncContext* c) : sd(ioc, c->c.fd), ac(c) {}

  net::posix::stream_descriptor sd;
  redisAsyncContext* ac;  // null once hiredis has let go of the socket
  bool want[2] = {false, false};
  bool armed[2] = {false, false};

  void set(int dir, bool on) {
    want[dir] = on;
    if (on) arm(dir);
  }

  void arm(int dir) {
    if (armed[dir] || !ac || !sd.is_open()) return;
    armed[dir] = true;
    auto what = dir == 0 ? net::posix::stream_descriptor::wait_read : net::posix::stream_descriptor::wait_write;
    sd.async_wait(what, [self = shared_from_this(), dir](boost::system::error_code ec) {
      self->armed[dir] = false;
      if (!self->ac || ec == net::error::operation_aborted) return;
      // Waiting again after each round also catches data hiredis left in
      // the socket (it reads at most one buffer per call).
      if (self->want[dir]) dir == 0 ? redisAsyncHandleRead(self->ac) : redisAsyncHandleWrite(self->ac);
      if (self->ac && self->want[dir] && !ec) self->arm(dir);
    });
  }

  void cleanup() {
    ac = nullptr;
    want[0] = want[1] = false;
    boost::system::error_code ec;
    sd.cancel(ec);
    sd.release();  // hiredis closes the descriptor itself
  }

  static void add_read(void* w) { static_cast<Watcher*>(w)->set(0, true); }
  static void del_read(void* w) { static_cast<Watcher*>(w)->set(0, false); }
  static void add_write(void* w) { static_cast<Watcher*>(w)->set(1, true); }
  static void del_write(void* w) { static_cast<Watcher*>(w)->set(1, false); }
  static void on_cleanup(void* w) { static_cast<Watcher*>(w)->cleanup(); }
};

// What a command's privdata points to until its reply (or failure) comes.
struct Connection::Pending {
  Connection* conn;
  Callback cb;
};

Connection::Connection(net::io_context& ioc, Endpoint endpoint, ConnectionOptions options, std::string role)
    : ioc_(ioc),
      endpoint_(std::move(endpoint)),
      options_(options),
      role_(std::move(role)),
      resolver_(ioc),
      connect_timer_(ioc),
      retry_timer_(ioc),
      timeout_timer_(ioc),
      backoff_(options.retry_min) {}

Connection::~Connection() {
  on_up = nullptr;
  on_down = nullptr;
  stop();
}

void Connection::start() {
  if (state_ != State::idle && state_ != State::stopped) return;
  state_ = State::idle;
  connect();
}

void Connection::connect() {
  state_ = State::resolving;
  ++attempt_;
  resolver_.async_resolve(endpoint_.host, std::to_string(endpoint_.port),
                          [w = weak_from_this()](boost::system::error_code ec, net::ip::tcp::resolver::results_type r) {
                            auto self = w.lock();
                            if (!self || self->state_ != State::resolving) return;
                            if (ec || r.empty()) {
                              self->lost(fmt::format("cannot resolve host '{}': {}", self->endpoint_.host,
                                                     ec ? ec.message() : "no address"));
                              return;
                            }
                            self->open(r.begin()->endpoint().address().to_string());
                          });
}

void Connection::open(const std::string& ip) {
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), endpoint_.port);
  if (!ac) {
    lost("out of memory");
    return;
  }
  if (ac->err) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    lost(why);
    return;
  }
  ac->data = this;
  try {
    watcher_ = std::make_shared<Watcher>(ioc_, ac);
  } catch (const std::exception& e) {
    redisAsyncFree(ac);
    lost(e.what());
    return;
  }
  // Hooks first: setting the connect callback asks for write readiness.
  ac->ev.data = watcher_.get();
  ac->ev.addRead = &Watcher::add_read;
  ac->ev.delRead = &Watcher::del_read;
  ac->ev.addWrite = &Watcher::add_write;
  ac->ev.delWrite = &Watcher::del_write;
  ac->ev.cleanup = &Watcher::on_cleanup;
  ac_ = ac;
  dying_ = false;
  state_ = State::connecting;
  redisAsyncSetDisconnectCallback(ac, &Connection::on_disconnect);
  redisAsyncSetConnectCallback(ac, &Connection::on_connect);
  // hiredis 0.14 has no connect timeout of its own.
  connect_timer_.expires_after(options_.connect_timeout);
  connect_timer_.async_wait([w = weak_from_this(), attempt = attempt_](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->attempt_ != attempt) return;
    if (self->state_ == State::connecting || self->state_ == State::handshaking)
      self->drop(CommandError::timed_out,
                 fmt::format("no connection within {} ms", self->options_.connect_timeout.count()));
  });
}

void Connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (!self || self->ac_ != ac) return;
  if (status != REDIS_OK) {
    // hiredis frees the context itself after this callback.
    self->ac_ = nullptr;
    self->lost(ac->errstr[0] ? ac->errstr : "connection refused");
    return;
  }
  self->handshake();
}

void Connection::handshake() {
  state_ = State::handshaking;
  if (endpoint_.password.empty() && endpoint_.db == 0) {
    became_up();
    return;
  }
  auto steps = std::make_shared<int>((endpoint_.password.empty() ? 0 : 1) + (endpoint_.db ? 1 : 0));
  auto check = [w = weak_from_this(), steps](std::string what) {
    return [w, steps, what](const redisReply* r, std::error_code ec) {
      auto self = w.lock();
      if (!self || ec) return;  // the connection failed: it retries by itself
      if (r->type == REDIS_REPLY_ERROR) {
        std::string why = fmt::format("{} refused: {} (fix the URL in channel_layer.hosts)", what,
                                      std::string(r->str, r->len));
        // Not from inside hiredis' callback: it would defer the free.
        net::post(self->ioc_, [w, why] {
          if (auto s = w.lock()) s->drop(CommandError::disconnected, why);
        });
        return;
      }
      if (--*steps == 0) self->became_up();
    };
  };
  if (!endpoint_.password.empty()) {
    if (endpoint_.username.empty())
      send_raw({"AUTH", endpoint_.password}, check("AUTH"), {});
    else
      send_raw({"AUTH", endpoint_.username, endpoint_.password}, check("AUTH"), {});
  }
  if (endpoint_.db) {
    std::string db = std::to_string(endpoint_.db);
    send_raw({"SELECT", db}, check("SELECT " + db), {});
  }
}

void Connection::became_up() {
  connect_timer_.cancel();
  bool recovered = ever_up_ || ever_failed_;
  if (recovered && failures_)
    log().info("redis: {} connection to {} is back after {} failed attempt{}", role_, endpoint_.display(), failures_,
               failures_ == 1 ? "" : "s");
  else if (recovered)
    log().info("redis: {} connection to {} is back", role_, endpoint_.display());
  else
    log().debug("redis: {} connection to {} is up", role_, endpoint_.display());
  state_ = State::up;
  ever_up_ = true;
  failures_ = 0;
  backoff_ = options_.retry_min;
  // What was issued while connecting goes first, in order.
  auto held = std::move(held_);
  held_.clear();
  for (auto& h : held) {
    std::vector<std::string_view> views(h.args.begin(), h.args.end());
    send_raw(views, std::move(h.cb), h.timeout);
  }
  if (on_up) on_up(recovered);
}

void Connection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<Connection*>(ac->data);
  if (!self || self->ac_ != ac) return;  // a drop we started ourselves
  self->ac_ = nullptr;
  self->lost(status == REDIS_OK ? std::string("closed by the server")
                                : std::string(ac->errstr[0] ? ac->errstr : "connection lost"));
}

void Connection::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  std::unique_ptr<Pending> p(static_cast<Pending*>(privdata));
  Connection* self = p->conn;
  (void)ac;
  if (!self->pending_.empty()) self->pending_.pop_front();
  if (!reply) {
    // The context is going away (hiredis fails what is in flight before it
    // reports the disconnect): nothing more may be queued on it.
    self->dying_ = true;
    if (p->cb) p->cb(nullptr, make_error_code(self->fail_reason_));
    return;
  }
  if (p->cb) p->cb(static_cast<redisReply*>(reply), {});
}

void Connection::drop(CommandError why, const std::string& reason) {
  if (!ac_) return;
  redisAsyncContext* ac = ac_;
  ac_ = nullptr;
  bool was_up = state_ == State::up;
  bool stopping = state_ == State::stopped;
  if (!stopping) state_ = State::idle;
  fail_reason_ = why;
  redisAsyncFree(ac);  // fails every command in flight, through its callback
  fail_reason_ = CommandError::disconnected;
  pending_.clear();
  fail_confirmations(why);
  fail_held(why == CommandError::timed_out ? CommandError::timed_out : CommandError::not_connected);
  if (stopping) return;
  if (was_up) {
    log().warn("redis: {} connection to {} dropped: {}; reconnecting", role_, endpoint_.display(), reason);
    if (on_down) on_down();
  }
  retry_later(was_up ? std::string{} : reason);
}

void Connection::fail_held(CommandError why) {
  auto held = std::move(held_);
  held_.clear();
  for (auto& h : held)
    if (h.cb) h.cb(nullptr, make_error_code(why));
}

void Connection::lost(const std::string& reason) {
  bool was_up = state_ == State::up;
  pending_.clear();
  fail_confirmations(CommandError::disconnected);
  fail_held(CommandError::not_connected);
  if (state_ == State::stopped) return;
  state_ = State::idle;
  if (was_up) {
    log().warn("redis: {} connection to {} lost: {}; reconnecting", role_, endpoint_.display(), reason);
    if (on_down) on_down();
    retry_later({});
    return;
  }
  retry_later(reason);
}

void Connection::retry_later(const std::string& failure) {
  if (state_ == State::stopped) return;
  connect_timer_.cancel();
  if (!failure.empty()) {
    ++failures_;
    if (!ever_up_) ever_failed_ = true;
    // Loud at first, then at 2, 4, 8... failures: a Redis that stays down
    // does not flood the log.
    if ((failures_ & (failures_ - 1)) == 0)
      log().warn("redis: cannot connect the {} connection to {}: {} (attempt {}; retrying every {} ms at most; "
                 "is redis-server running there?)",
                 role_, endpoint_.display(), failure, failures_, options_.retry_max.count());
  }
  auto delay = failure.empty() ? options_.retry_min : backoff_;
  if (!failure.empty()) backoff_ = std::min(backoff_ * 2, options_.retry_max);
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->state_ != State::idle) return;
    self->connect();
  });
}

void Connection::stop() {
  if (state_ == State::stopped) return;
  state_ = State::stopped;
  boost::system::error_code ec;
  resolver_.cancel();
  connect_timer_.cancel();
  retry_timer_.cancel();
  timeout_timer_.cancel();
  if (ac_) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    fail_reason_ = CommandError::disconnected;
    redisAsyncFree(ac);
  }
  pending_.clear();
  fail_confirmations(CommandError::disconnected);
  fail_held(CommandError::not_connected);
}

void Connection::stop_when_idle(Clock::time_point deadline, std::function<void()> done) {
  if (pending_.empty() || state_ != State::up || Clock::now() >= deadline) {
    stop();
    if (done) done();
    return;
  }
  auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(5));
  timer->async_wait([w = weak_from_this(), timer, deadline, done = std::move(done)](boost::system::error_code) mutable {
    if (auto self = w.lock()) self->stop_when_idle(deadline, std::move(done));
    else if (done) done();
  });
}

void Connection::command(const std::vector<std::string_view>& args, Callback cb, std::chrono::milliseconds timeout) {
  if (state_ == State::up && ac_ && !dying_) {
    send_raw(args, std::move(cb), timeout);
    return;
  }
  if (state_ == State::resolving || state_ == State::connecting || state_ == State::handshaking) {
    // Bounded by the attempt: its connect timeout fails these with it.
    held_.push_back({std::vector<std::string>(args.begin(), args.end()), std::move(cb), timeout});
    return;
  }
  if (cb) cb(nullptr, make_error_code(CommandError::not_connected));
}

void Connection::send_raw(const std::vector<std::string_view>& args, Callback cb, std::chrono::milliseconds timeout) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* p = new Pending{this, std::move(cb)};
  // hiredis copies the arguments into its output buffer here.
  if (redisAsyncCommandArgv(ac_, &Connection::on_reply, p, static_cast<int>(argv.size()), argv.data(), lens.data()) !=
      REDIS_OK) {
    std::unique_ptr<Pending> own(p);
    if (own->cb) own->cb(nullptr, make_error_code(CommandError::not_connected));
    return;
  }
  pending_.push_back(Clock::now() + (timeout.count() ? timeout : options_.command_timeout));
  arm_timeout();
}

void Connection::subscribe(const std::vector<std::string_view>& channels, Done done) {
  sub_command("SUBSCRIBE", channels, std::move(done));
}
void Connection::unsubscribe(const std::vector<std::string_view>& channels) {
  sub_command("UNSUBSCRIBE", channels, {});
}

void Connection::sub_command(const char* verb, const std::vector<std::string_view>& channels, Done done) {
  if (channels.empty()) {
    if (done) done({});
    return;
  }
  if (state_ != State::up || !ac_ || dying_) {
    if (done) done(make_error_code(CommandError::not_connected));
    return;
  }
  std::vector<const char*> argv{verb};
  std::vector<std::size_t> lens{std::strlen(verb)};
  for (auto c : channels) {
    argv.push_back(c.data());
    lens.push_back(c.size());
  }
  // hiredis keeps this callback for every message of these channels, so
  // its privdata is the connection itself, not a per-command record.
  if (redisAsyncCommandArgv(ac_, &Connection::on_push, this, static_cast<int>(argv.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    // Not sent (hiredis refuses UNSUBSCRIBE outside subscribed mode):
    // nothing will be confirmed.
    if (done) done(make_error_code(CommandError::not_connected));
    return;
  }
  // One confirmation per channel, in order, each due within command_timeout.
  pending_.insert(pending_.end(), channels.size(), Clock::now() + options_.command_timeout);
  confirmations_.push_back({channels.size(), std::move(done)});
  arm_timeout();
}

void Connection::fail_confirmations(CommandError why) {
  auto waiting = std::move(confirmations_);
  confirmations_.clear();
  for (auto& c : waiting)
    if (c.done) c.done(make_error_code(why));
}

void Connection::on_push(redisAsyncContext*, void* reply, void* privdata) {
  auto* self = static_cast<Connection*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  auto* kind = r->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  std::string_view k(kind->str, kind->len);
  if (k == "subscribe" || k == "unsubscribe") {
    if (!self->pending_.empty()) self->pending_.pop_front();
    if (!self->confirmations_.empty() && --self->confirmations_.front().left == 0) {
      auto done = std::move(self->confirmations_.front().done);
      self->confirmations_.pop_front();
      if (done) done({});
    }
    return;
  }
  if (k != "message" || !self->on_message) return;
  self->on_message(std::string_view(r->element[1]->str, r->element[1]->len),
                   std::string_view(r->element[2]->str, r->element[2]->len));
}

void Connection::arm_timeout() {
  if (timeout_armed_ || pending_.empty()) return;
  timeout_armed_ = true;
  timeout_timer_.expires_at(pending_.front());
  timeout_timer_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (!self) return;
    self->timeout_armed_ = false;
    if (ec || self->state_ == State::stopped) return;
    if (!self->pending_.empty() && Clock::now() >= self->pending_.front()) {
      self->drop(CommandError::timed_out, "a command got no reply in time");
      return;
    }
    self->arm_timeout();
  });
}

}  // namespace channels::redis
