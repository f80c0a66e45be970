#pragma once
#include <channels/channels.hpp>

// Step 4: a room. Everyone connected to ws/chat/<room_name>/ is in the
// group chat_<room_name>; a message from one is sent to the whole group.
struct ChatConsumer : channels::AsyncJsonWebsocketConsumer {
  ChatConsumer() { handle("chat.message", &ChatConsumer::chat_message); }

  channels::awaitable<void> connect() override {
    group_ = "chat_" + scope().kwarg("room_name");
    co_await group_add(group_);
    accept();
  }

  channels::awaitable<void> disconnect(int) override { co_await group_discard(group_); }

  // From the WebSocket: {"message": "..."}
  channels::awaitable<void> receive_json(channels::Json content) override {
    channels::Message event = {{"type", "chat.message"}, {"message", content["message"]}};
    co_await group_send(group_, std::move(event));
  }

  // From the group: the "type" chat.message runs chat_message.
  channels::awaitable<void> chat_message(const channels::Message& event) {
    channels::Json out = {{"message", event["message"]}};
    co_await send_json(std::move(out));
  }

  std::string group_;
};
