#pragma once
// Coroutine consumers, like Channels' AsyncWebsocketConsumer: the hooks and
// the typed handlers are C++20 coroutines (Asio awaitables) that may
// co_await the channel layer, a timer, any Asio operation or blocking work
// sent to a thread pool (channels::run_blocking) without blocking the strand.
//
//   struct Chat : channels::AsyncJsonWebsocketConsumer {
//     Chat() { handle("chat.message", &Chat::chat_message); }
//     awaitable<void> connect() override {
//       group_ = "chat_" + scope().kwarg("room_name");
//       co_await group_add(group_);
//       accept();
//     }
//     awaitable<void> receive_json(Json content) override {
//       Message event = {{"type", "chat.message"}, {"message", content["message"]}};
//       co_await group_send(group_, std::move(event));
//     }
//     awaitable<void> chat_message(const Message& m) {
//       Json out = {{"message", m["message"]}};
//       co_await send_json(std::move(out));
//     }
//     std::string group_;
//   };
//
// (GCC 12 rejects a braced message written inside a co_await expression:
// build the message in its own statement first, as above.)
//
// Events for one consumer run one at a time, in arrival order: a handler that
// is suspended in a co_await holds back the next event for the same consumer
// until it has finished (as Channels awaits each handler). Other connections
// are not held back: they have their own strands.
//
// A hook or handler that throws is logged and the connection is closed with
// 1011 (before accept(): the handshake is refused); events still queued for
// it are dropped, and disconnect() still runs.

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <channels/layer.hpp>
#include <channels/message.hpp>
#include <channels/websocket_consumer.hpp>

namespace channels {

template <class T>
using awaitable = boost::asio::awaitable<T>;

class AsyncWebsocketConsumer : public WebsocketConsumer {
 public:
  /// The client asked to connect: call accept() to let it in (the default
  /// does), or close() to refuse it with HTTP 403. The handshake waits for
  /// this coroutine up to the server's handshake timeout.
  virtual awaitable<void> connect();
  /// A text message arrived (the string is the consumer's own copy).
  virtual awaitable<void> receive(std::string text);
  virtual awaitable<void> receive_bytes(std::string bytes);
  /// The connection is over (see WebsocketConsumer::on_disconnect for the
  /// code). Runs after every event that arrived before it; the server has
  /// already left the consumer's groups when it runs.
  virtual awaitable<void> disconnect(int code);

  /// The channel layer, awaited: each resumes on this consumer's strand once
  /// the layer has done it, and throws std::system_error if the layer failed
  /// (Redis unreachable, say).
  awaitable<void> group_add(std::string group);
  awaitable<void> group_discard(std::string group);
  awaitable<GroupSendResult> group_send(std::string group, Message msg);
  /// Sends to one channel (another consumer's channel_name()); returns
  /// LayerError::channel_full if that channel was full and dropped it.
  awaitable<std::error_code> channel_send(std::string channel, Message msg);

  /// Sends a frame to this consumer's client (queued on the connection, as
  /// WebsocketConsumer::send; the status says if it was dropped or closed).
  awaitable<SendStatus> send(std::string text);
  awaitable<SendStatus> send_bytes(std::string bytes);

  /// Handlers for layer messages may be coroutines:
  ///   awaitable<void> chat_message(const Message& m);
  ///   handle("chat.message", &Chat::chat_message);
  using WebsocketConsumer::handle;
  template <class C>
  void handle(std::string_view type, awaitable<void> (C::*fn)(const Message&)) {
    C* self = static_cast<C*>(this);
    WebsocketConsumer::handle(type, [this, self, fn](const Message& m) {
      enqueue([self, fn, m]() { return (self->*fn)(m); }, false);
    });
  }

  /// True when no event is running or waiting (for tests).
  bool idle() const { return !running_ && events_.empty(); }

  // The synchronous hooks feed the queue; override the coroutines instead.
  void on_connect() final;
  void on_receive(std::string_view text) final;
  void on_receive_bytes(std::string_view bytes) final;
  void on_disconnect(int code) final;

 private:
  struct Event {
    std::function<awaitable<void>()> run;
    bool is_disconnect = false;
  };
  void enqueue(std::function<awaitable<void>()> run, bool is_disconnect);
  awaitable<void> drain(std::shared_ptr<void> keep_alive);

  std::deque<Event> events_;
  bool running_ = false;
  bool failed_ = false;
};

/// Speaks JSON like JsonWebsocketConsumer: a text frame that is not JSON
/// closes with 1007, a binary frame with 1003.
class AsyncJsonWebsocketConsumer : public AsyncWebsocketConsumer {
 public:
  virtual awaitable<void> receive_json(Json content);
  awaitable<SendStatus> send_json(Json content);

  awaitable<void> receive(std::string text) override;
  awaitable<void> receive_bytes(std::string bytes) override;

 protected:
  /// As JsonWebsocketConsumer::json_max_depth: deeper frames close with 1009.
  std::size_t json_max_depth = 128;
};

}  // namespace channels
