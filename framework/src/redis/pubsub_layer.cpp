// RedisPubSubChannelLayer (see channels/layers/redis_pubsub.hpp). Per host:
// one connection that publishes and one that only listens. Everything that
// touches Redis runs on the layer's own I/O thread.

#include <channels/layers/redis_pubsub.hpp>

#include <hiredis/hiredis.h>

#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>

#include <channels/errors.hpp>
#include <channels/log.hpp>

#include "connection.hpp"
#include "wire.hpp"

namespace channels::detail {

namespace net = boost::asio;
using namespace std::chrono_literals;

class RedisPubSubLayerImpl {
 public:
  explicit RedisPubSubLayerImpl(RedisLayerOptions o) : options(std::move(o)) {
    if (options.hosts.empty()) throw ConfigError("channel_layer.hosts is empty: list at least one, like [redis://127.0.0.1:6379]");
    if (options.layer.capacity == 0) throw ConfigError("channel_layer.capacity must be at least 1");
    for (const auto& h : options.hosts) endpoints_.push_back(redis::parse_url(h));
    if (!options.symmetric_encryption_keys.empty() || !options.channel_capacity.empty())
      log().warn("channel_layer: backend redis-pubsub ignores symmetric_encryption_keys and channel_capacity, as "
                 "channels_redis' pub/sub layer does; use backend: redis for them");
  }

  static void start(const std::shared_ptr<RedisPubSubLayerImpl>& self) {
    self->work_.emplace(self->ioc_.get_executor());
    redis::ConnectionOptions o{self->options.connect_timeout, self->options.command_timeout, self->options.retry_min,
                               self->options.retry_max};
    RedisPubSubLayerImpl* raw = self.get();
    for (std::size_t i = 0; i < self->endpoints_.size(); ++i) {
      Shard s;
      s.pub = std::make_shared<redis::Connection>(self->ioc_, self->endpoints_[i], o, "publish");
      s.sub = std::make_shared<redis::Connection>(self->ioc_, self->endpoints_[i], o, "subscribe");
      for (auto* c : {&s.pub, &s.sub}) {
        (*c)->on_down = [raw] { --raw->up_; };
        raw->total_ += 1;
      }
      s.pub->on_up = [raw](bool) { ++raw->up_; };
      s.sub->on_up = [raw, i](bool recovered) {
        ++raw->up_;
        raw->resubscribe(i, recovered);
      };
      s.sub->on_message = [raw](std::string_view channel, std::string_view payload) { raw->deliver(channel, payload); };
      self->shards_.push_back(std::move(s));
    }
    self->thread_ = std::thread([keep = self] {
      for (auto& s : keep->shards_) {
        s.pub->start();
        s.sub->start();
      }
      for (;;) {
        try {
          keep->ioc_.run();
          return;
        } catch (const std::exception& e) {
          log().error("redis-pubsub layer: unhandled exception on the I/O thread: {}", e.what());
        }
      }
    });
  }

  void shutdown() {
    if (stopping_.exchange(true) || !thread_.joinable()) return;
    auto finish = [this] {
      auto deadline = std::chrono::steady_clock::now() + 1s;
      auto left = std::make_shared<std::size_t>(shards_.size());
      for (auto& s : shards_) {
        s.sub->stop();
        s.pub->stop_when_idle(deadline, [this, left] {
          if (--*left == 0) {
            work_.reset();
            ioc_.stop();
          }
        });
      }
    };
    if (thread_.get_id() == std::this_thread::get_id()) {
      finish();
      thread_.detach();
      return;
    }
    net::post(ioc_, finish);
    thread_.join();
  }

  ~RedisPubSubLayerImpl() { shards_.clear(); }

  std::string new_channel(std::string_view prefix) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string name = fmt::format("{}{}.{:016x}{:016x}", options.prefix, prefix, rng(), rng());
    require_channel_name(name);
    {
      std::lock_guard lock(mutex_);
      local_locked(name);
    }
    net::post(ioc_, [this, name] { subscribe(name); });
    return name;
  }

  void send(std::string_view channel, const Message& msg, ChannelLayer::Completion done) {
    require_channel_name(channel);
    publish(std::string(channel), pack(msg), [this, done = std::move(done), ch = std::string(channel)](long long n) {
      if (n < 0) note_unavailable("send", ch);
      if (done) done(n < 0 ? make_error_code(LayerError::unavailable) : std::error_code{});
    });
  }

  void group_add(std::string_view group, std::string_view channel, ChannelLayer::Completion done) {
    require_group_name(group);
    require_channel_name(channel);
    {
      std::lock_guard lock(mutex_);
      if (!locals_.count(std::string(channel)))
        throw std::invalid_argument(fmt::format(
            "group_add('{}', '{}'): with backend redis-pubsub only channels of this process can join groups (as "
            "in channels_redis); use the consumer's channel_name()",
            group, channel));
    }
    net::post(ioc_, [this, gc = group_channel(group), ch = std::string(channel), done = std::move(done)] {
      groups_[gc].insert(ch);
      auto& s = shard_of(gc);
      bool fresh = s.subscribed.insert(gc).second;
      if (!done) {
        if (fresh) s.sub->subscribe({gc});
        return;
      }
      // Done once Redis confirms the subscription, so that a PUBLISH right
      // after reaches this process. Subscribing again to a group it already
      // listens to costs one confirmation and changes nothing.
      s.sub->subscribe({gc}, [done](std::error_code ec) {
        done(ec ? make_error_code(LayerError::unavailable) : std::error_code{});
      });
    });
  }

  void group_discard(std::string_view group, std::string_view channel, ChannelLayer::Completion done) {
    require_group_name(group);
    require_channel_name(channel);
    net::post(ioc_, [this, gc = group_channel(group), ch = std::string(channel), done = std::move(done)] {
      leave(gc, ch);
      if (done) done({});
    });
  }

  void group_send(std::string_view group, const Message& msg, ChannelLayer::GroupCompletion done) {
    require_group_name(group);
    std::string gc = group_channel(group);
    publish(gc, pack(msg), [this, done = std::move(done), gc](long long n) {
      if (n < 0) note_unavailable("group_send", gc);
      if (done) done(GroupSendResult{n > 0 ? static_cast<std::size_t>(n) : 0, n < 0 ? 1u : 0u});
    });
  }

  std::shared_ptr<Inbox> attach(std::string_view channel) {
    require_channel_name(channel);
    std::string name(channel);
    bool fresh;
    std::shared_ptr<Inbox> inbox;
    {
      std::lock_guard lock(mutex_);
      fresh = !locals_.count(name);
      inbox = local_locked(name);
      locals_[name].attached = true;
    }
    if (fresh) net::post(ioc_, [this, name] { subscribe(name); });
    return inbox;
  }

  void detach(std::string_view channel) {
    std::string name(channel);
    {
      std::lock_guard lock(mutex_);
      auto it = locals_.find(name);
      if (it == locals_.end()) return;
      it->second.inbox->clear_wake();
      locals_.erase(it);
    }
    net::post(ioc_, [this, name] {
      std::vector<std::string> joined;
      for (auto& [gc, members] : groups_)
        if (members.count(name)) joined.push_back(gc);
      for (auto& gc : joined) leave(gc, name);
      unsubscribe(name);
    });
  }

  MessagePtr receive_nowait(std::string_view channel) {
    require_channel_name(channel);
    std::string name(channel);
    std::shared_ptr<Inbox> inbox;
    bool fresh = false;
    {
      std::lock_guard lock(mutex_);
      fresh = !locals_.count(name);
      inbox = local_locked(name);
    }
    if (fresh) net::post(ioc_, [this, name] { subscribe(name); });
    return inbox->take_one(Inbox::Clock::now(), options.layer.expiry);
  }

  LayerStats stats() const {
    LayerStats s;
    s.messages_sent = sent_;
    s.dropped_full = dropped_full_;
    s.dropped_no_channel = dropped_no_channel_;
    return s;
  }
  RedisLayerStats redis_stats() const { return {received_, malformed_, unavailable_, reconnects_}; }
  bool connected() const { return up_ == total_; }

  const RedisLayerOptions options;

 private:
  struct Shard {
    std::shared_ptr<redis::Connection> pub, sub;
    std::set<std::string> subscribed;  // what this process listens to there
  };
  struct Local {
    std::shared_ptr<Inbox> inbox;
    bool attached = false;
  };

  static std::string pack(const Message& msg) {
    if (!msg.is_object())
      throw std::invalid_argument(fmt::format("a channel layer message must be a JSON object with a \"type\", not {}",
                                              msg.type_name()));
    return redis::pack(msg);
  }
  std::string group_channel(std::string_view group) const { return fmt::format("{}__group__{}", options.prefix, group); }
  Shard& shard_of(std::string_view name) { return shards_[redis::consistent_hash(name, shards_.size())]; }

  std::shared_ptr<Inbox> local_locked(const std::string& name) {
    auto& l = locals_[name];
    if (!l.inbox) l.inbox = std::make_shared<Inbox>(options.layer.capacity, options.layer.consumer_buffer);
    return l.inbox;
  }

  // -1: not published (Redis down); otherwise how many subscribers got it.
  void publish(std::string channel, std::string body, std::function<void(long long)> done) {
    ++sent_;
    net::post(ioc_, [this, channel = std::move(channel), body = std::move(body), done = std::move(done)] {
      shard_of(channel).pub->command({"PUBLISH", channel, body}, [done](const redisReply* r, std::error_code ec) {
        done(!ec && r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
      });
    });
  }

  void subscribe(const std::string& name) {
    auto& s = shard_of(name);
    if (s.subscribed.insert(name).second) s.sub->subscribe({name});
  }
  void unsubscribe(const std::string& name) {
    auto& s = shard_of(name);
    if (s.subscribed.erase(name)) s.sub->unsubscribe({name});
  }
  void leave(const std::string& gc, const std::string& channel) {
    auto it = groups_.find(gc);
    if (it == groups_.end()) return;
    it->second.erase(channel);
    if (it->second.empty()) {
      groups_.erase(it);
      unsubscribe(gc);  // the last local member left
    }
  }

  // A (re)connected subscriber knows nothing: subscribe to everything again.
  void resubscribe(std::size_t host, bool recovered) {
    auto& s = shards_[host];
    std::vector<std::string_view> names(s.subscribed.begin(), s.subscribed.end());
    s.sub->subscribe(names);
    if (!recovered) return;
    ++reconnects_;
    if (!names.empty())
      log().info("redis-pubsub: subscribed again to {} channel(s) and group(s) on {}", names.size(),
                 s.sub->endpoint().display());
    static const MessagePtr notice = std::make_shared<const Message>(Message{{"type", "layer.reconnected"}});
    auto now = Inbox::Clock::now();
    std::lock_guard lock(mutex_);
    for (auto& [_, l] : locals_)
      if (l.attached) l.inbox->push(notice, now);
  }

  void deliver(std::string_view channel, std::string_view payload) {
    ++received_;
    std::string error;
    auto decoded = redis::read_body(payload, error);
    if (!decoded) {
      auto before = malformed_++;
      if (before < 10 || before % 1000 == 0)
        log().warn("redis-pubsub: skipped a message on {} that cannot be read: {}", channel, error);
      return;
    }
    auto msg = std::make_shared<const Message>(std::move(decoded->message));  // one copy for every member
    std::vector<std::string> targets;
    std::string name(channel);
    if (auto g = groups_.find(name); g != groups_.end())
      targets.assign(g->second.begin(), g->second.end());
    else
      targets.push_back(name);
    auto now = Inbox::Clock::now();
    std::lock_guard lock(mutex_);
    for (const auto& t : targets) {
      auto it = locals_.find(t);
      if (it == locals_.end()) {
        ++dropped_no_channel_;
        continue;
      }
      if (!it->second.inbox->push(msg, now)) {
        auto before = dropped_full_++;
        if (before == 0 || before % 1000 == 0)
          log().warn("channel layer: a message for {} dropped because its queue is full ({} dropped in all)", t,
                     before + 1);
      }
    }
  }

  void note_unavailable(std::string_view what, std::string_view where) {
    auto before = unavailable_++;
    if (before == 0 || before % 1000 == 0)
      log().warn("channel layer: {} to {} lost: Redis is not reachable ({} lost in all)", what, where, before + 1);
  }

  std::vector<redis::Endpoint> endpoints_;
  net::io_context ioc_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::vector<Shard> shards_;                                   // I/O thread
  std::map<std::string, std::set<std::string>> groups_;         // I/O thread: group channel -> local members
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Local> locals_;
  std::atomic<int> up_{0}, total_{0};
  std::atomic<std::uint64_t> sent_{0}, dropped_full_{0}, dropped_no_channel_{0};
  std::atomic<std::uint64_t> received_{0}, malformed_{0}, unavailable_{0}, reconnects_{0};
};

}  // namespace channels::detail

namespace channels {

RedisPubSubChannelLayer::RedisPubSubChannelLayer(RedisLayerOptions options)
    : impl_(std::make_shared<detail::RedisPubSubLayerImpl>(std::move(options))) {
  detail::RedisPubSubLayerImpl::start(impl_);
}
RedisPubSubChannelLayer::~RedisPubSubChannelLayer() { impl_->shutdown(); }
std::string RedisPubSubChannelLayer::new_channel(std::string_view prefix) { return impl_->new_channel(prefix); }
void RedisPubSubChannelLayer::send(std::string_view channel, Message msg, Completion done) {
  impl_->send(channel, msg, std::move(done));
}
void RedisPubSubChannelLayer::group_add(std::string_view group, std::string_view channel, Completion done) {
  impl_->group_add(group, channel, std::move(done));
}
void RedisPubSubChannelLayer::group_discard(std::string_view group, std::string_view channel, Completion done) {
  impl_->group_discard(group, channel, std::move(done));
}
void RedisPubSubChannelLayer::group_send(std::string_view group, Message msg, GroupCompletion done) {
  impl_->group_send(group, msg, std::move(done));
}
std::shared_ptr<Inbox> RedisPubSubChannelLayer::attach(std::string_view channel) { return impl_->attach(channel); }
void RedisPubSubChannelLayer::detach(std::string_view channel) { impl_->detach(channel); }
MessagePtr RedisPubSubChannelLayer::receive_nowait(std::string_view channel) { return impl_->receive_nowait(channel); }
LayerStats RedisPubSubChannelLayer::stats() const { return impl_->stats(); }
const LayerOptions& RedisPubSubChannelLayer::options() const { return impl_->options.layer; }
RedisLayerStats RedisPubSubChannelLayer::redis_stats() const { return impl_->redis_stats(); }
bool RedisPubSubChannelLayer::connected() const { return impl_->connected(); }

}  // namespace channels
