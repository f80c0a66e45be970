#pragma once
// The chat app's consumers: the Django Channels tutorial in C++, plus the
// plain group room and an echo endpoint.

#include <channels/channels.hpp>

namespace chat {

/// ws/chat/<room_name>/ : the tutorial's ChatConsumer. JSON {"message": ...}
/// in; every member of the room gets {"message": ...} back.
class ChatConsumer : public channels::JsonWebsocketConsumer {
 public:
  ChatConsumer();
  void on_connect() override;
  void on_receive_json(const channels::Json& content) override;
  void on_disconnect(int code) override;
  void chat_message(const channels::Message& event);

 private:
  std::string group_;
};

/// room/<group>/ : every text frame goes to the whole group as text.
class RoomConsumer : public channels::WebsocketConsumer {
 public:
  RoomConsumer();
  void on_connect() override;
  void on_receive(std::string_view text) override;
  void xx_oo(const channels::Message& event);

 private:
  std::string group_;
};

/// ws/echo/ : every frame back as it came, text as text, binary as binary.
class EchoConsumer : public channels::WebsocketConsumer {
 public:
  void on_receive(std::string_view text) override { send(text); }
  void on_receive_bytes(std::string_view bytes) override { send_bytes(bytes); }
};

/// GET chat/ and chat/<room_name>/ : the tutorial's two pages, from
/// `options: {template: FILE}`.
class PageConsumer : public channels::HttpConsumer {
 public:
  void on_request(const channels::HttpRequest& request) override;
};

void register_consumers(channels::Registry& registry);

}  // namespace chat
