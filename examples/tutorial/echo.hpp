#pragma once
#include <channels/channels.hpp>

// Step 2: every message straight back to its sender.
struct EchoConsumer : channels::WebsocketConsumer {
  void on_receive(std::string_view text) override { send(text); }
};
