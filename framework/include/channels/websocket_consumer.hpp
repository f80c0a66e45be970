#pragma once
// WebsocketConsumer: the Channels consumer for WebSocket connections.
//
//   struct Echo : channels::WebsocketConsumer {
//     void on_receive(std::string_view text) override { send(text); }
//   };

#include <memory>
#include <string>
#include <string_view>

#include <channels/consumer.hpp>
#include <channels/send_status.hpp>

namespace channels {

namespace detail {
class WebsocketTransport;
}

/// Close codes from RFC 6455 section 7.4.1 that apps use most.
namespace close_code {
inline constexpr int normal = 1000;
inline constexpr int going_away = 1001;
inline constexpr int protocol_error = 1002;
inline constexpr int unsupported_data = 1003;
inline constexpr int abnormal = 1006;  // no close frame: the TCP connection dropped
inline constexpr int invalid_payload = 1007;
inline constexpr int policy_violation = 1008;
inline constexpr int too_big = 1009;
inline constexpr int internal_error = 1011;
inline constexpr int try_again_later = 1013;
}  // namespace close_code

class WebsocketConsumer : public Consumer {
 public:
  /// The client asked to connect. Call accept() to let it in (the default
  /// does), or close() first to refuse it with HTTP 403.
  virtual void on_connect() { accept(); }
  /// A text message (valid UTF-8) arrived. Default: ignored.
  virtual void on_receive(std::string_view text);
  /// A binary message arrived. Default: ignored.
  virtual void on_receive_bytes(std::string_view bytes);
  /// The connection is over; `code` is the close code the client sent, the
  /// code the server closed with, or 1006 if the TCP connection dropped.
  /// Runs exactly once for every connection whose on_connect ran.
  virtual void on_disconnect(int code);

  /// Completes the handshake, optionally choosing one of the subprotocols the
  /// client offered (scope().subprotocols).
  void accept(std::string_view subprotocol = {});
  /// Sends a text frame. Safe from any thread: off the strand it is posted there.
  SendStatus send(std::string_view text);
  SendStatus send_bytes(std::string_view bytes);
  /// Closes with a code and reason (at most 123 bytes). Before accept() it
  /// refuses the handshake with HTTP 403 instead.
  void close(int code = close_code::normal, std::string_view reason = {});

  bool accepted() const { return accepted_; }
  bool closing() const { return closing_; }

 private:
  friend struct detail::ConsumerAccess;
  SendStatus send_frame(std::shared_ptr<const std::string> payload, bool binary);

  std::shared_ptr<detail::WebsocketTransport> transport_;
  bool accepted_ = false;
  bool closing_ = false;
};

/// Speaks JSON: each text frame is parsed and handed to on_receive_json.
/// A frame that is not valid JSON closes the connection with 1007 (invalid
/// payload data) and a reason naming the parse error; arrays and objects
/// nested deeper than `json_max_depth` close it with 1009 (too big) before
/// parsing; a binary frame closes it with 1003 (unsupported data).
class JsonWebsocketConsumer : public WebsocketConsumer {
 public:
  virtual void on_receive_json(const Json& content);
  SendStatus send_json(const Json& content);

  void on_receive(std::string_view text) override;
  void on_receive_bytes(std::string_view bytes) override;

 protected:
  /// Copying, comparing and dumping a JSON value recurse once per level, so
  /// a client's `[[[[...` is refused at this depth rather than let overflow
  /// the stack later. Raise it in the constructor if the app needs more.
  std::size_t json_max_depth = 128;
};

}  // namespace channels
