#pragma once
// The chat app's consumers: the Django Channels tutorial in C++, plus the
// plain group room and an echo endpoint.

#include <memory>
#include <optional>

#include <channels/channels.hpp>

#include "hub.hpp"
#include "limits.hpp"
#include "store.hpp"

namespace chat {

/// ws/chat/<room_name>/ : the tutorial's ChatConsumer, grown into a chat.
///
/// The tutorial's protocol works unchanged: {"message": ...} in, every member
/// of the room gets {"message": ...} back. A client that first sends
/// {"type": "join", "name": ..., "member": ...} becomes a named member: it
/// gets a hello (server id, who is online, the last messages), its messages
/// are kept in the room's history and acknowledged once stored, and the room
/// hears when it joins and leaves. docs/chat.md has the whole protocol.
class ChatConsumer : public channels::JsonWebsocketConsumer {
 public:
  ChatConsumer();
  explicit ChatConsumer(std::shared_ptr<Hub> hub);
  void on_connect() override;
  void on_receive_json(const channels::Json& content) override;
  void on_disconnect(int code) override;
  void chat_message(const channels::Message& event);

 private:
  void join(const channels::Json& content);
  void say(const std::string& text, const channels::Json& ref);
  void error(std::string text);

  std::shared_ptr<Hub> hub_;
  std::string room_;
  std::string group_;
  std::optional<Member> member_;  // set once joined
  bool joining_ = false;
  RateLimiter rate_;
  int strikes_ = 0;
};

/// GET chat/api/rooms/ : the rooms with someone online, as JSON
/// [{"room": ..., "online": n}...], for the lobby.
class RoomsConsumer : public channels::HttpConsumer {
 public:
  RoomsConsumer();
  explicit RoomsConsumer(std::shared_ptr<Hub> hub) : hub_(std::move(hub)) {}
  void on_request(const channels::HttpRequest& request) override;

 private:
  std::shared_ptr<Hub> hub_;
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

/// Registers the app's consumers under the names routing.yaml uses; the
/// chat ones share `hub` (Hub::fallback() if null).
void register_consumers(channels::Registry& registry, std::shared_ptr<Hub> hub = nullptr);

}  // namespace chat
