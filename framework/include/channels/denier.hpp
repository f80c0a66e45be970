#pragma once
// What middleware returns to refuse a WebSocket (Channels' WebsocketDenier):
// a consumer that closes in on_connect, which the server answers with 403
// before the handshake completes. The app's own consumer is never built.

#include <channels/websocket_consumer.hpp>

namespace channels {

class WebsocketDenier final : public WebsocketConsumer {
 public:
  void on_connect() override { close(); }
};

}  // namespace channels
