#pragma once
// Consumer: one object per connection, like a Channels consumer. All of its
// code (hooks and message handlers) runs on the connection's strand.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include <channels/executor.hpp>
#include <channels/layer.hpp>
#include <channels/message.hpp>
#include <channels/scope.hpp>

namespace channels {

namespace detail {
struct ConsumerAccess;

// Handler names compare as if every '.' were '_', so a message's "type"
// finds its handler without building the handler's name for each message.
struct HandlerNameHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view type) const noexcept {
    std::size_t h = 14695981039346656037ull;  // FNV-1a
    for (char c : type) {
      h ^= static_cast<unsigned char>(c == '.' ? '_' : c);
      h *= 1099511628211ull;
    }
    return h;
  }
};
struct HandlerNameEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if ((a[i] == '.' ? '_' : a[i]) != (b[i] == '.' ? '_' : b[i])) return false;
    return true;
  }
};
}  // namespace detail

/// What routing.yaml (or the code) attached to a route.
struct RouteOptions {
  Json options = Json::object();
  std::filesystem::path base_dir;  // of the file that declared the route
};

class Consumer {
 public:
  using Handler = std::function<void(const Message&)>;

  Consumer() = default;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  virtual ~Consumer() = default;

  const Scope& scope() const { return scope_; }
  /// This consumer's own channel: other connections reach it with
  /// channel_layer().send(channel_name(), msg).
  const std::string& channel_name() const { return channel_name_; }
  ChannelLayer& channel_layer() const;
  /// The route's `options:` from routing.yaml (an empty object if none).
  const Json& options() const;
  /// A path from the options, made absolute against the directory of the
  /// routing file that declared the route.
  std::filesystem::path resolve_path(std::string_view relative) const;
  /// The connection's strand; post here to touch this consumer from elsewhere.
  const Strand& executor() const { return *strand_; }

  /// Joins a group with this consumer's channel. Groups still joined when the
  /// connection ends are left for you after on_disconnect.
  void group_add(std::string_view group);
  /// The same, then runs `joined` on this consumer's strand once the layer
  /// has stored the membership (with Redis: once Redis holds it), with an
  /// error if it could not (the membership is still remembered and retried).
  /// Channels awaits group_add before accept(); to do as it does, so that a
  /// group_send anywhere right after the handshake reaches this consumer:
  ///   group_add(group_, [this](std::error_code) { accept(); });
  /// Not run if the connection is gone by then.
  void group_add(std::string_view group, std::function<void(std::error_code)> joined);
  /// `done` (optional) runs when the layer has done it, on any thread.
  void group_discard(std::string_view group, ChannelLayer::Completion done = {});
  /// Sends to every member of a group, this consumer included if it is one.
  /// Safe from any thread.
  void group_send(std::string_view group, Message msg, ChannelLayer::GroupCompletion done = {});

  /// Runs `fn` for layer messages whose "type" is `type` ("chat.message"
  /// and "chat_message" name the same handler).
  void handle(std::string_view type, Handler fn);
  template <class C>
  void handle(std::string_view type, void (C::*fn)(const Message&)) {
    C* self = static_cast<C*>(this);
    handle(type, [self, fn](const Message& m) { (self->*fn)(m); });
  }

 protected:
  /// A message with no handler. The default logs an error naming the type and
  /// this consumer; the connection stays up. ("layer.reconnected", which the
  /// Redis layer sends after an outage, is only logged at debug level.)
  virtual void on_unknown_message(const Message& msg);

  /// True on this consumer's strand (where its code must run).
  bool on_strand() const { return strand_ && strand_->running_in_this_thread(); }
  /// Runs `fn` on the strand later, if the connection still exists then.
  void post_to_strand(std::function<void()> fn);
  /// The same, as a function that any thread may call at any time, even
  /// after this consumer is gone: for replies that come from another thread
  /// (a store, a database) and must not touch the consumer there.
  std::function<void(std::function<void()>)> strand_poster() const;
  /// The connection that owns this consumer, held alive while the caller
  /// keeps the pointer (null once the connection is being destroyed): what
  /// asynchronous work holds on to so that `this` outlives it.
  std::shared_ptr<void> keep_alive() const { return owner_.lock(); }

 private:
  friend struct detail::ConsumerAccess;
  void dispatch(const Message& msg);

  Scope scope_;
  std::string channel_name_;
  std::shared_ptr<ChannelLayer> layer_;
  std::optional<Strand> strand_;
  std::weak_ptr<void> owner_;  // the connection; keeps `this` alive for posted work
  std::shared_ptr<const RouteOptions> route_options_;
  std::unordered_map<std::string, Handler, detail::HandlerNameHash, detail::HandlerNameEqual> handlers_;
  std::set<std::string, std::less<>> groups_;
};

}  // namespace channels
