#pragma once
// Testing consumers without sockets, like channels.testing in Django Channels:
// the app's router builds the consumer for a path, and the test talks to it
// as a client would.
//
//   channels::testing::WebsocketCommunicator chat(app, "/ws/chat/lobby/");
//   ASSERT_TRUE(chat.connect().accepted);
//   chat.send_json_to({{"message", "hi"}});
//   EXPECT_EQ(chat.receive_json_from(), (Json{{"message", "hi"}}));
//   chat.disconnect();

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <channels/client.hpp>
#include <channels/layer.hpp>
#include <channels/message.hpp>
#include <channels/routing.hpp>

namespace channels::testing {

struct ConnectResult {
  bool accepted = false;
  std::string subprotocol;  // the one accept() chose
  int close_code = 0;       // if refused: the code the consumer closed with
};

class WebsocketCommunicator {
 public:
  struct Options {
    std::vector<std::pair<std::string, std::string>> headers;
    std::vector<std::string> subprotocols;
    /// Shared with other communicators to test groups; a fresh in-memory layer if null.
    std::shared_ptr<ChannelLayer> layer;
  };

  /// `path` may carry a query string ("/ws/x/?token=abc"). Throws
  /// std::invalid_argument if no WebSocket route matches it.
  WebsocketCommunicator(ApplicationPtr app, std::string_view path, Options options);
  WebsocketCommunicator(ApplicationPtr app, std::string_view path);
  ~WebsocketCommunicator();  // disconnects (1000) if still connected
  WebsocketCommunicator(const WebsocketCommunicator&) = delete;
  WebsocketCommunicator& operator=(const WebsocketCommunicator&) = delete;

  /// Runs on_connect and waits for accept() or close().
  ConnectResult connect(std::chrono::milliseconds timeout = std::chrono::seconds(1));

  void send_to(std::string_view text);
  void send_bytes_to(std::string_view bytes);
  void send_json_to(const Json& content);

  /// The next frame the consumer sent, or nullopt if none within `timeout`
  /// (or the consumer closed: see close_code()).
  std::optional<ClientMessage> receive_from(std::chrono::milliseconds timeout = std::chrono::seconds(1));
  /// The next frame parsed as JSON; throws std::runtime_error if none came or
  /// it is not JSON.
  Json receive_json_from(std::chrono::milliseconds timeout = std::chrono::seconds(1));
  /// True if the consumer sends nothing (and does not close) within `timeout`.
  bool receive_nothing(std::chrono::milliseconds timeout = std::chrono::milliseconds(100));

  /// The client goes away with `code`: runs on_disconnect, leaves groups.
  void disconnect(int code = 1000);

  /// The code the consumer closed with (0 while it has not).
  int close_code() const;
  ChannelLayer& channel_layer() const;
  /// The consumer's channel name (after connect()).
  std::string channel_name() const;

  struct State;  // private to the implementation

 private:
  std::shared_ptr<State> state_;
};

}  // namespace channels::testing
