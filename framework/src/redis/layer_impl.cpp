#include "layer_impl.hpp"

#include <hiredis/hiredis.h>

#include <cmath>
#include <future>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <channels/errors.hpp>
#include <channels/log.hpp>

#include "wire.hpp"

namespace channels::detail {

namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// Like uuid4().hex: 32 lowercase hex digits (version and variant set).
std::string uuid_hex() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;                       // version 4
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);      // RFC 4122 variant
  return fmt::format("{:016x}{:016x}", hi, lo);
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::int64_t whole_seconds(std::chrono::milliseconds ms, std::string_view what) {
  if (ms < 1s)
    throw ConfigError(fmt::format("channel_layer.{} must be at least 1 second with backend: redis (Redis "
                                  "expires keys in whole seconds)",
                                  what));
  return std::chrono::duration_cast<std::chrono::seconds>(ms).count();  // int(), as channels_redis
}

// One in a thousand: every drop is counted, the log says so for the first
// and each 1000th.
bool worth_logging(std::uint64_t before, std::uint64_t after) { return before == 0 || before / 1000 != after / 1000; }

const MessagePtr& reconnected_message() {
  static const MessagePtr m = std::make_shared<const Message>(Message{{"type", "layer.reconnected"}});
  return m;
}

}  // namespace

// ---------------------------------------------------------------------------
// One blocking-pop loop on one key of one host, over a connection of its own
// (a blocking command holds its connection). Re-armed every block_timeout,
// and after each message it takes what else is waiting in one go.
class RedisLayerImpl::ReceiveLoop : public std::enable_shared_from_this<ReceiveLoop> {
 public:
  ReceiveLoop(RedisLayerImpl& layer, std::size_t host, std::string key, std::string normal_channel)
      : layer_(layer),
        key_(std::move(key)),
        backup_(key_ + "$inflight"),
        normal_channel_(std::move(normal_channel)),
        retry_(layer.ioc_) {
    redis::ConnectionOptions o{layer.options.connect_timeout, layer.options.command_timeout, layer.options.retry_min,
                               layer.options.retry_max};
    conn_ = std::make_shared<redis::Connection>(layer.ioc_, layer.endpoints_[host], o, "receive (" + key_ + ")");
  }

  void start() {
    ++layer_.connections_total_;
    conn_->on_up = [w = weak_from_this()](bool) {
      if (auto self = w.lock()) {
        ++self->layer_.connections_up_;
        self->restore();
      }
    };
    conn_->on_down = [w = weak_from_this()] {
      if (auto self = w.lock()) --self->layer_.connections_up_;
    };
    conn_->start();
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    retry_.cancel();
    if (conn_->up()) --layer_.connections_up_;
    --layer_.connections_total_;
    conn_->on_up = nullptr;
    conn_->on_down = nullptr;
    conn_->stop();
  }

 private:
  static constexpr int batch = 100;

  // channels_redis runs this before every pop; nothing but this process
  // reads its key, and hand-over here is immediate, so once per connection
  // is enough to put back what a receive of another implementation left.
  void restore() {
    conn_->command({"EVAL", redis::restore_script, "0", key_, backup_},
                   [w = weak_from_this()](const redisReply* r, std::error_code ec) {
                     auto self = w.lock();
                     if (!self || ec || self->stopped_) return;  // a new connection restarts the loop
                     if (r->type == REDIS_REPLY_ERROR)
                       log().warn("redis: restoring {}: {}", self->backup_, std::string(r->str, r->len));
                     self->pop_waiting();
                   });
  }

  // Takes up to `batch` waiting messages without blocking.
  void pop_waiting() {
    static const std::string count = std::to_string(batch);
    conn_->command({"ZPOPMIN", key_, count}, [w = weak_from_this()](const redisReply* r, std::error_code ec) {
      auto self = w.lock();
      if (!self || ec || self->stopped_) return;
      if (r->type != REDIS_REPLY_ARRAY) return self->failed(r);
      for (std::size_t i = 0; i + 1 < r->elements; i += 2)
        self->layer_.deliver(std::string_view(r->element[i]->str, r->element[i]->len), self->key_,
                             self->normal_channel_);
      if (r->elements / 2 == static_cast<std::size_t>(batch))
        self->pop_waiting();
      else
        self->block();
    });
  }

  // Waits for the next message (BZPOPMIN, the oldest first).
  void block() {
    auto deadline = layer_.options.block_timeout + layer_.options.command_timeout;
    conn_->command(
        {"BZPOPMIN", key_, block_seconds_},
        [w = weak_from_this()](const redisReply* r, std::error_code ec) {
          auto self = w.lock();
          if (!self || ec || self->stopped_) return;
          if (r->type == REDIS_REPLY_NIL) return self->block();  // nothing within block_timeout: again
          if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return self->failed(r);
          self->layer_.deliver(std::string_view(r->element[1]->str, r->element[1]->len), self->key_,
                               self->normal_channel_);
          self->pop_waiting();
        },
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline));
  }

  // An error reply (say, WRONGTYPE: someone stored something else under our
  // key). Logged; tried again in a second.
  void failed(const redisReply* r) {
    std::string what = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                    : fmt::format("unexpected reply type {}", r->type);
    log().error("redis: receiving from {}: {}; trying again in 1 s", key_, what);
    retry_.expires_after(1s);
    retry_.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      if (!ec && self && !self->stopped_ && self->conn_->up()) self->pop_waiting();
    });
  }

  RedisLayerImpl& layer_;
  const std::string key_, backup_, normal_channel_;
  const std::string block_seconds_ = std::to_string(layer_.options.block_timeout.count());
  std::shared_ptr<redis::Connection> conn_;
  net::steady_timer retry_;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------

RedisLayerImpl::RedisLayerImpl(RedisLayerOptions o) : options(std::move(o)), client_prefix(uuid_hex()) {
  if (options.layer.capacity == 0) throw ConfigError("channel_layer.capacity must be at least 1");
  if (options.hosts.empty()) throw ConfigError("channel_layer.hosts is empty: list at least one, like [redis://127.0.0.1:6379]");
  if (options.prefix.empty()) throw ConfigError("channel_layer.prefix must not be empty (channels_redis uses asgi)");
  for (const auto& [pattern, cap] : options.channel_capacity)
    if (cap == 0) throw ConfigError(fmt::format("channel_layer.channel_capacity '{}' must be at least 1", pattern));
  if (options.block_timeout < 1s) throw ConfigError("the Redis layer's block_timeout must be at least 1 second");
  expiry_s_ = whole_seconds(options.layer.expiry, "expiry");
  group_expiry_s_ = whole_seconds(options.layer.group_expiry, "group_expiry");
  for (const auto& h : options.hosts) endpoints_.push_back(redis::parse_url(h));
  if (!options.symmetric_encryption_keys.empty()) {
    for (const auto& k : options.symmetric_encryption_keys)
      if (k.empty()) throw ConfigError("channel_layer.symmetric_encryption_keys: a key must not be empty");
    crypter_ = std::make_unique<redis::MultiFernet>(options.symmetric_encryption_keys);
  }
}

RedisLayerImpl::~RedisLayerImpl() {
  // Connections go before the io_context they live on.
  for (auto& [_, loops] : loops_)
    for (auto& l : loops) l->stop();
  loops_.clear();
  commands_.clear();
}

void RedisLayerImpl::start(const std::shared_ptr<RedisLayerImpl>& self) {
  self->work_.emplace(self->ioc_.get_executor());
  redis::ConnectionOptions o{self->options.connect_timeout, self->options.command_timeout, self->options.retry_min,
                             self->options.retry_max};
  for (std::size_t i = 0; i < self->endpoints_.size(); ++i) {
    auto c = std::make_shared<redis::Connection>(self->ioc_, self->endpoints_[i], o, "command");
    RedisLayerImpl* raw = self.get();
    c->on_up = [raw, i](bool recovered) {
      ++raw->connections_up_;
      raw->on_command_up(i, recovered);
    };
    c->on_down = [raw] { --raw->connections_up_; };
    self->commands_.push_back(std::move(c));
    ++self->connections_total_;
  }
  // The thread keeps the object alive until its loop ends, so a layer
  // released from one of its own completions can still wind down.
  self->thread_ = std::thread([keep = self] {
    for (auto& c : keep->commands_) c->start();
    for (;;) {
      try {
        keep->ioc_.run();
        return;
      } catch (const std::exception& e) {
        log().error("redis layer: unhandled exception on the I/O thread: {}", e.what());
      }
    }
  });
}

void RedisLayerImpl::shutdown() {
  if (stopping_.exchange(true)) return;
  auto finish = [this] {
    for (auto& [_, loops] : loops_)
      for (auto& l : loops) l->stop();
    // What consumers sent last (group_discard on disconnect, mostly) still
    // gets a moment to reach Redis.
    auto deadline = std::chrono::steady_clock::now() + 1s;
    auto left = std::make_shared<std::size_t>(commands_.size());
    for (auto& c : commands_)
      c->stop_when_idle(deadline, [this, left] {
        if (--*left == 0) {
          work_.reset();
          ioc_.stop();
        }
      });
    if (commands_.empty()) {
      work_.reset();
      ioc_.stop();
    }
  };
  if (!thread_.joinable()) return;
  if (thread_.get_id() == std::this_thread::get_id()) {
    // Released from inside a completion: the thread ends after this handler.
    finish();
    thread_.detach();
    return;
  }
  net::post(ioc_, finish);
  thread_.join();
}

void RedisLayerImpl::post(std::function<void()> fn) { net::post(ioc_, std::move(fn)); }

// Scores are the sender's Unix time in seconds, as channels_redis writes
// them; strictly increasing here, so two messages sent in the same
// microsecond still pop in the order they were sent.
double RedisLayerImpl::next_score() {
  double s = unix_now();
  if (s <= last_score_) s = std::nextafter(last_score_, HUGE_VAL);
  last_score_ = s;
  return s;
}

std::int64_t RedisLayerImpl::trim_below(std::int64_t age_seconds) {
  return static_cast<std::int64_t>(std::floor(unix_now())) - age_seconds;
}

std::size_t RedisLayerImpl::capacity_of(std::string_view channel) const {
  for (const auto& [pattern, cap] : options.channel_capacity)
    if (redis::glob_match(pattern, channel)) return cap;
  return options.layer.capacity;
}

// Which host holds a channel's key. For a process-local channel this is the
// hash of its non-local name, the host its owner pops. (channels_redis'
// send() hashes the full name instead, so with several hosts about half of
// its direct sends land where nobody reads; this layer's receive loops watch
// every host to catch those, see listen().)
std::size_t RedisLayerImpl::host_of(std::string_view channel) {
  if (redis::is_process_local(channel)) return redis::consistent_hash(redis::non_local_name(channel), endpoints_.size());
  return send_cycle_++ % endpoints_.size();  // normal channels: round-robin, like channels_redis
}

void RedisLayerImpl::check_message(const Message& msg) const {
  if (!msg.is_object())
    throw std::invalid_argument(fmt::format("a channel layer message must be a JSON object with a \"type\", not {}",
                                            msg.type_name()));
  if (msg.contains(std::string(redis::asgi_channel_key)))
    throw std::invalid_argument("a message may not contain the key __asgi_channel__: the Redis layer uses it to "
                                "address messages; rename that field");
}

// Trims expired messages, then the group_send script: capacity check, ZADD
// and EXPIRE in one atomic step (channels_redis' send() does the same in
// three round trips, which lets concurrent senders overshoot capacity).
void RedisLayerImpl::store(std::size_t host, const std::string& key, std::size_t capacity, std::string member,
                           std::function<void(Stored)> done) {
  auto& c = commands_[host];
  std::string trim = std::to_string(trim_below(expiry_s_));
  std::string cap = std::to_string(capacity), score = redis::score_text(next_score());
  std::string expiry = std::to_string(expiry_s_);
  c->command({"ZREMRANGEBYSCORE", key, "0", trim}, nullptr);
  c->command({"EVAL", redis::group_send_script, "1", key, member, cap, score, expiry},
             [done = std::move(done), key](const redisReply* r, std::error_code ec) {
               if (ec) return done(Stored::unavailable);
               if (r->type == REDIS_REPLY_INTEGER) return done(r->integer == 0 ? Stored::ok : Stored::full);
               log().error("redis: storing a message in {}: {}", key,
                           r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "unexpected reply");
               done(Stored::unavailable);
             });
}

// ---------------------------------------------------------------------------
// The API: validate and serialize on the caller's thread, then post.

std::string RedisLayerImpl::new_channel(std::string_view prefix) {
  std::string name = fmt::format("{}.{}!{}", prefix, client_prefix, uuid_hex());
  require_channel_name(name);
  std::string non_local(redis::non_local_name(name));
  {
    std::lock_guard lock(mutex_);
    local_locked(name);
  }
  ensure_listening(non_local);
  return name;
}

std::shared_ptr<Inbox> RedisLayerImpl::local_locked(const std::string& channel) {
  auto& l = locals_[channel];
  if (!l.inbox) l.inbox = std::make_shared<Inbox>(options.layer.capacity, options.layer.consumer_buffer);
  return l.inbox;
}

bool RedisLayerImpl::ensure_listening(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    if (!listening_.insert(name).second) return false;
  }
  post([this, name] { listen(name); });
  return true;
}

void RedisLayerImpl::send(std::string_view channel, const Message& msg, ChannelLayer::Completion done) {
  require_channel_name(channel);
  check_message(msg);
  std::string body = redis::pack(msg);
  if (redis::is_process_local(channel))
    body = redis::pack_with(body, redis::asgi_channel_key, Json(std::string(channel)));
  std::string member = redis::make_member(body, crypter_.get());
  ++sent_;
  post([this, channel = std::string(channel), member = std::move(member), done = std::move(done)]() mutable {
    std::size_t host = host_of(channel);
    store(host, redis::channel_key(options.prefix, channel), capacity_of(channel), std::move(member),
          [this, channel, done = std::move(done)](Stored s) {
            if (s == Stored::full) note_full(channel, 1);
            if (s == Stored::unavailable) note_unavailable("send", channel, 1);
            if (!done) return;
            done(s == Stored::ok     ? std::error_code{}
                 : s == Stored::full ? make_error_code(LayerError::channel_full)
                                     : make_error_code(LayerError::unavailable));
          });
  });
}

void RedisLayerImpl::group_add(std::string_view group, std::string_view channel, ChannelLayer::Completion done) {
  require_group_name(group);
  require_channel_name(channel);
  post([this, group = std::string(group), channel = std::string(channel), done = std::move(done)] {
    // Remembered even if Redis is down now: it is added on reconnect.
    memberships_[group].insert(channel);
    auto& c = commands_[redis::consistent_hash(group, endpoints_.size())];
    std::string key = redis::group_key(options.prefix, group);
    c->command({"ZADD", key, redis::score_text(next_score()), channel},
               [key](const redisReply* r, std::error_code) {
                 if (r && r->type == REDIS_REPLY_ERROR)
                   log().error("redis: group_add to {}: {}", key, std::string(r->str, r->len));
               });
    c->command({"EXPIRE", key, std::to_string(group_expiry_s_)},
               [this, group, done](const redisReply* r, std::error_code ec) {
                 if (ec) log().warn("redis: group_add to {} not stored now ({}); it is added when Redis is back", group, ec.message());
                 bool ok = !ec && r->type != REDIS_REPLY_ERROR;
                 if (done) done(ok ? std::error_code{} : make_error_code(LayerError::unavailable));
               });
  });
}

void RedisLayerImpl::group_discard(std::string_view group, std::string_view channel, ChannelLayer::Completion done) {
  require_group_name(group);
  require_channel_name(channel);
  post([this, group = std::string(group), channel = std::string(channel), done = std::move(done)] {
    if (auto it = memberships_.find(group); it != memberships_.end()) {
      it->second.erase(channel);
      if (it->second.empty()) memberships_.erase(it);
    }
    auto& c = commands_[redis::consistent_hash(group, endpoints_.size())];
    c->command({"ZREM", redis::group_key(options.prefix, group), channel},
               [done](const redisReply* r, std::error_code ec) {
                 bool ok = !ec && r->type != REDIS_REPLY_ERROR;
                 if (done) done(ok ? std::error_code{} : make_error_code(LayerError::unavailable));
               });
  });
}

void RedisLayerImpl::group_send(std::string_view group, const Message& msg, ChannelLayer::GroupCompletion done) {
  require_group_name(group);
  check_message(msg);
  // Packed once here; each destination key only appends its
  // __asgi_channel__ list to these bytes.
  auto body = std::make_shared<const std::string>(redis::pack(msg));
  post([this, group = std::string(group), body, done = std::move(done)]() mutable {
    auto& c = commands_[redis::consistent_hash(group, endpoints_.size())];
    std::string key = redis::group_key(options.prefix, group);
    c->command({"ZREMRANGEBYSCORE", key, "0", std::to_string(trim_below(group_expiry_s_))}, nullptr);
    c->command({"ZRANGE", key, "0", "-1"}, [this, group, body, done = std::move(done)](const redisReply* r,
                                                                                       std::error_code ec) mutable {
      if (ec || r->type != REDIS_REPLY_ARRAY) {
        note_unavailable("group_send", group, 1);
        if (r && r->type == REDIS_REPLY_ERROR)
          log().error("redis: group_send to {}: {}", group, std::string(r->str, r->len));
        if (done) done({});
        return;
      }
      // Members by destination key, in order of first appearance: one
      // message per key, naming every member that reads it.
      struct Bucket {
        std::string key;
        std::size_t host;
        std::size_t capacity;
        Json names = Json::array();
      };
      std::vector<Bucket> buckets;
      std::unordered_map<std::string, std::size_t> index;
      for (std::size_t i = 0; i < r->elements; ++i) {
        std::string name(r->element[i]->str, r->element[i]->len);
        std::string key = redis::channel_key(options.prefix, name);
        auto [it, fresh] = index.try_emplace(key, buckets.size());
        if (fresh)
          buckets.push_back({key, redis::consistent_hash(redis::non_local_name(name), endpoints_.size()),
                             capacity_of(name)});
        buckets[it->second].names.push_back(std::move(name));
      }
      sent_ += r->elements;
      if (buckets.empty()) {
        if (done) done({});
        return;
      }
      struct Tally {
        GroupSendResult result;
        std::size_t left;
        ChannelLayer::GroupCompletion done;
      };
      auto tally = std::make_shared<Tally>(Tally{{}, buckets.size(), std::move(done)});
      for (auto& b : buckets) {
        std::size_t n = b.names.size();
        std::string member =
            redis::make_member(redis::pack_with(*body, redis::asgi_channel_key, b.names), crypter_.get());
        store(b.host, b.key, b.capacity, std::move(member), [this, tally, n, group](Stored s) {
          if (s == Stored::ok) tally->result.delivered += n;
          else tally->result.dropped += n;
          if (s == Stored::full) note_full(group, n);
          if (s == Stored::unavailable) note_unavailable("group_send", group, n);
          if (--tally->left == 0 && tally->done) tally->done(tally->result);
        });
      }
    });
  });
}

std::shared_ptr<Inbox> RedisLayerImpl::attach(std::string_view channel) {
  require_channel_name(channel);
  std::string name(channel);
  bool local = redis::is_process_local(channel);
  if (local && redis::non_local_name(channel).find(client_prefix + "!") == std::string_view::npos)
    throw InvalidName(fmt::format("cannot receive on '{}': it belongs to another process; receive on a name "
                                  "this layer's new_channel() gave",
                                  channel));
  std::shared_ptr<Inbox> inbox;
  {
    std::lock_guard lock(mutex_);
    inbox = local_locked(name);
    locals_[name].attached = true;
  }
  // A normal channel ("worker.tasks") is popped from its own key, by
  // whichever process gets there first.
  ensure_listening(local ? std::string(redis::non_local_name(channel)) : name);
  return inbox;
}

void RedisLayerImpl::detach(std::string_view channel) {
  std::string name(channel);
  bool normal = !redis::is_process_local(channel);
  {
    std::lock_guard lock(mutex_);
    auto it = locals_.find(name);
    if (it == locals_.end()) return;
    it->second.inbox->clear_wake();
    dropped_expired_gone_ += it->second.inbox->dropped_expired();
    locals_.erase(it);
    if (normal) listening_.erase(name);
  }
  post([this, name, normal] {
    // Memberships the consumer did not leave itself: nobody reads them now.
    for (auto g = memberships_.begin(); g != memberships_.end();) {
      if (g->second.erase(name)) {
        commands_[redis::consistent_hash(g->first, endpoints_.size())]->command(
            {"ZREM", redis::group_key(options.prefix, g->first), name}, nullptr);
      }
      g = g->second.empty() ? memberships_.erase(g) : std::next(g);
    }
    if (normal) stop_listening(name);
  });
}

MessagePtr RedisLayerImpl::receive_nowait(std::string_view channel) {
  require_channel_name(channel);
  std::string name(channel);
  bool normal = !redis::is_process_local(channel);
  std::shared_ptr<Inbox> inbox;
  {
    std::lock_guard lock(mutex_);
    auto it = locals_.find(name);
    if (it != locals_.end()) inbox = it->second.inbox;
    else if (normal) inbox = local_locked(name);  // first call: start taking this channel's messages
  }
  if (normal) ensure_listening(name);
  return inbox ? inbox->take_one(Inbox::Clock::now(), options.layer.expiry) : nullptr;
}

// ---------------------------------------------------------------------------
// Receiving, on the I/O thread.

// One loop per host for each key this process reads: messages for this
// process are stored on the host its non-local name hashes to, but
// channels_redis' send() puts some on another (see host_of()); watching
// every host delivers those too. With one host, that is one loop.
void RedisLayerImpl::listen(const std::string& name) {
  if (stopping_ || loops_.count(name)) return;
  std::string key = redis::channel_key(options.prefix, name);
  std::string normal = redis::is_process_local(name) ? std::string{} : name;
  auto& loops = loops_[name];
  for (std::size_t h = 0; h < endpoints_.size(); ++h) {
    loops.push_back(std::make_shared<ReceiveLoop>(*this, h, key, normal));
    loops.back()->start();
  }
}

void RedisLayerImpl::stop_listening(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    if (listening_.count(name)) return;  // listened to again since
  }
  auto it = loops_.find(name);
  if (it == loops_.end()) return;
  for (auto& l : it->second) l->stop();
  loops_.erase(it);
}

void RedisLayerImpl::deliver(std::string_view member, const std::string& key, const std::string& normal_channel) {
  ++received_;
  std::string error;
  auto decoded = redis::read_member(member, crypter_.get(), expiry_s_ + 10, error);
  if (!decoded) {
    auto before = malformed_++;
    if (before < 10 || worth_logging(before, before + 1))
      log().warn("redis: skipped a message in {} that cannot be read: {} ({} bytes; {} skipped in all)", key, error,
                 member.size(), before + 1);
    return;
  }
  // Decoded once; every local member of a group shares this one copy.
  auto msg = std::make_shared<const Message>(std::move(decoded->message));
  std::vector<std::string> targets;
  const Json& named = decoded->channels;
  if (named.is_string()) {
    targets.push_back(named.get<std::string>());
  } else if (named.is_array()) {
    for (const auto& n : named)
      if (n.is_string()) targets.push_back(n.get<std::string>());
  } else if (!normal_channel.empty() && named.is_null()) {
    targets.push_back(normal_channel);
  }
  if (targets.empty()) {
    auto before = malformed_++;
    if (before < 10 || worth_logging(before, before + 1))
      log().warn("redis: skipped a message in {} that names no channel (__asgi_channel__ is {})", key,
               named.is_null() ? "missing" : named.dump());
    return;
  }
  auto now = Inbox::Clock::now();
  std::size_t full = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& t : targets) {
      auto it = locals_.find(t);
      if (it == locals_.end()) {
        // A consumer that has gone (its membership outlived it) or a
        // channel of another process listed by mistake.
        ++dropped_no_channel_;
        log().debug("redis: message of type '{}' for {}, which is not open here: dropped", message_type(*msg), t);
        continue;
      }
      if (!it->second.inbox->push(msg, now)) ++full;
    }
  }
  if (full) note_full(key, full);
}

// A command connection is up. This process' group memberships on that host
// are (re)written: Redis may have lost them, or they were asked for before
// the first connection. After a failure every consumer then hears
// {"type": "layer.reconnected"}: messages may have been lost meanwhile.
void RedisLayerImpl::on_command_up(std::size_t host, bool recovered) {
  if (recovered) ++reconnects_;
  auto& c = commands_[host];
  auto left = std::make_shared<std::size_t>(1);
  auto finish = [this, left, recovered] {
    if (--*left == 0 && recovered) announce_reconnected();
  };
  std::size_t n = 0;
  for (const auto& [group, channels] : memberships_) {
    if (redis::consistent_hash(group, endpoints_.size()) != host || channels.empty()) continue;
    std::string key = redis::group_key(options.prefix, group);
    std::vector<std::string> args{"ZADD", key};
    for (const auto& ch : channels) {
      args.push_back(redis::score_text(next_score()));
      args.push_back(ch);
    }
    std::vector<std::string_view> views(args.begin(), args.end());
    ++*left;
    n += channels.size();
    c->command(views, nullptr);
    c->command({"EXPIRE", key, std::to_string(group_expiry_s_)},
               [finish](const redisReply*, std::error_code) { finish(); });
  }
  if (n) log().info("redis: re-added {} group membership{} on {}", n, n == 1 ? "" : "s", c->endpoint().display());
  finish();
}

void RedisLayerImpl::announce_reconnected() {
  auto now = Inbox::Clock::now();
  std::lock_guard lock(mutex_);
  for (auto& [name, l] : locals_)
    if (l.attached) l.inbox->push(reconnected_message(), now);
}

void RedisLayerImpl::note_full(std::string_view where, std::size_t n) {
  auto before = dropped_full_.fetch_add(n);
  if (worth_logging(before, before + n))
    log().warn("channel layer: {} message(s) for {} dropped because a channel was at capacity ({} dropped in all); "
               "raise channel_layer.capacity, or make sure the channel is read",
               n, where, before + n);
}

void RedisLayerImpl::note_unavailable(std::string_view what, std::string_view where, std::size_t n) {
  auto before = unavailable_.fetch_add(n);
  if (worth_logging(before, before + n))
    log().warn("channel layer: {} to {} lost: Redis is not reachable ({} lost in all); it is retried in the "
               "background",
               what, where, before + n);
}

LayerStats RedisLayerImpl::stats() const {
  LayerStats s;
  s.messages_sent = sent_;
  s.dropped_full = dropped_full_;
  s.dropped_no_channel = dropped_no_channel_;
  std::lock_guard lock(mutex_);
  s.dropped_expired = dropped_expired_gone_;
  for (const auto& [_, l] : locals_) s.dropped_expired += l.inbox->dropped_expired();
  return s;
}

RedisLayerStats RedisLayerImpl::redis_stats() const { return {received_, malformed_, unavailable_, reconnects_}; }

bool RedisLayerImpl::connected() const { return connections_up_ == connections_total_; }

}  // namespace channels::detail
