#include "consumers.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace chat {

using channels::Json;
using channels::Message;

// A room name becomes part of a group name, which Channels limits to ASCII
// letters, digits, '-', '_' and '.' (under 100 characters).
static bool valid_room(std::string_view room) {
  return channels::valid_group_name("chat_" + std::string(room));
}

ChatConsumer::ChatConsumer() : ChatConsumer(Hub::fallback()) {}

ChatConsumer::ChatConsumer(std::shared_ptr<Hub> hub)
    : hub_(std::move(hub)), rate_(hub_->limits.tutorial_rate, hub_->limits.tutorial_burst) {
  handle("chat.message", &ChatConsumer::chat_message);
}

void ChatConsumer::on_connect() {
  std::string room = scope().kwarg("room_name");
  if (!valid_room(room)) {
    close();  // refused: HTTP 403
    return;
  }
  room_ = std::move(room);
  group_ = "chat_" + room_;
  group_add(group_);
  accept();
}

void ChatConsumer::on_receive_json(const Json& content) {
  if (content.is_object() && content.value("type", Json()) == "join") {
    join(content);
    return;
  }
  auto it = content.is_object() ? content.find("message") : content.end();
  if (!content.is_object() || it == content.end() || !it->is_string()) {
    error(R"(expected {"message": "some text"}, or {"type": "join", "name": "your name"} first)");
    return;
  }
  // A flooder is told to slow down, then closed; nobody else waits for it.
  if (!rate_.allow()) {
    if (++strikes_ >= hub_->limits.strikes) {
      close(channels::close_code::policy_violation, "too many messages");
      return;
    }
    error(fmt::format("too many messages: at most {} a second; this one was not sent",
                      member_ ? hub_->limits.rate : hub_->limits.tutorial_rate));
    return;
  }
  strikes_ = 0;
  const std::string& text = it->get_ref<const std::string&>();
  if (std::string why = check_message(text, hub_->limits); !why.empty()) {
    error(why);
    return;
  }
  say(text, content.value("ref", Json()));
}

void ChatConsumer::say(const std::string& text, const Json& ref) {
  if (!member_) {  // the tutorial's protocol: straight to the room, as before
    group_send(group_, {{"type", "chat.message"}, {"message", text}});
    return;
  }
  // A member's message is stored first, then sent: what the room sees (and
  // what the sender's ack confirms) is in the history.
  Json entry{{"message", text}, {"name", member_->name}, {"member", member_->id}, {"time", now_ms()}};
  hub_->store().append(room_, entry, hub_->limits.history,
                       [post = strand_poster(), this, ref](std::error_code ec, Json stored) {
                         post([this, ec, ref, stored = std::move(stored)]() mutable {
                           if (ec) {
                             send_json({{"error", "not sent: the message store is unavailable, try again"},
                                        {"ref", ref}});
                             return;
                           }
                           std::int64_t id = stored["id"];
                           stored["type"] = "chat.message";
                           group_send(group_, std::move(stored));
                           send_json({{"type", "ack"}, {"ref", ref}, {"id", id}});
                         });
                       });
}

void ChatConsumer::join(const Json& content) {
  if (member_) {
    error("already joined as " + member_->name);
    return;
  }
  const Json& name = content.value("name", Json());
  std::string why = name.is_string() ? check_name(name.get<std::string>(), hub_->limits)
                                     : check_name("", hub_->limits);
  if (!why.empty()) {
    send_json({{"error", why}, {"field", "name"}});
    return;
  }
  std::string id = content.value("member", Json()).is_string() ? content["member"].get<std::string>() : "";
  if (!id.empty() && !valid_member_id(id)) {
    error("member: 1 to 64 letters, digits, '-' or '_' (or leave it out)");
    return;
  }
  member_ = Member{room_, id.empty() ? channel_name() : id, name.get<std::string>(), channel_name()};
  rate_ = RateLimiter(hub_->limits.rate, hub_->limits.burst);  // a person's pace from now on
  hub_->joined(*member_);
  auto post = strand_poster();
  // Online first, then the snapshot: it has this member, and any later
  // join or leave reaches this connection through the group.
  hub_->store().touch({*member_}, hub_->presence_ttl, [post, this, hub = hub_, room = room_](std::error_code ec, Json) {
    if (ec) {
      post([this] { close(channels::close_code::internal_error, "the chat store is unavailable"); });
      return;
    }
    hub->store().room(room, hub->limits.history, [post, this](std::error_code ec, Json snapshot) {
      post([this, ec, snapshot = std::move(snapshot)] {
        if (ec) {
          close(channels::close_code::internal_error, "the chat store is unavailable");
          return;
        }
        const Limits& l = hub_->limits;
        send_json({{"type", "hello"},
                   {"server", hub_->server_id()},
                   {"member", {{"id", member_->id}, {"name", member_->name}}},
                   {"online", snapshot["online"]},
                   {"history", snapshot["history"]},
                   {"limits", {{"message_chars", l.message_chars}, {"name_chars", l.name_chars}, {"rate", l.rate}}}});
        group_send(group_, presence_notice("join", member_->id, member_->name));
      });
    });
  });
}

void ChatConsumer::error(std::string text) { send_json({{"error", std::move(text)}}); }

void ChatConsumer::on_disconnect(int) {
  if (!group_.empty()) group_discard(group_);
  if (!member_) return;
  hub_->left(*member_);
  // The layer outlives the store's replies (the hub holds it); a member that
  // already reconnected elsewhere is not removed, and nobody hears it left.
  hub_->store().leave(*member_, [layer = &channel_layer(), group = group_, m = *member_](std::error_code ec, Json removed) {
    if (!ec && removed == true) layer->group_send(group, presence_notice("leave", m.id, m.name));
  });
}

void ChatConsumer::chat_message(const Message& event) {
  if (!member_) {  // the tutorial's clients get exactly what they always got
    send_json({{"message", event["message"]}});
    return;
  }
  Json out = event;
  out.erase("type");
  send_json(out);
}

RoomsConsumer::RoomsConsumer() : RoomsConsumer(Hub::fallback()) {}

void RoomsConsumer::on_request(const channels::HttpRequest& request) {
  if (request.method != "GET") {
    send_response(405, "405 Method Not Allowed\n", {{"Allow", "GET"}});
    return;
  }
  hub_->store().rooms([post = strand_poster(), this](std::error_code ec, Json rooms) {
    post([this, ec, rooms = std::move(rooms)] {
      if (ec) {
        send_response(503, R"({"error": "the chat store is unavailable"})", {{"Content-Type", "application/json"}});
        return;
      }
      send_response(200, rooms.dump(), {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}});
    });
  });
}

RoomConsumer::RoomConsumer() { handle("xx.oo", &RoomConsumer::xx_oo); }

void RoomConsumer::on_connect() {
  std::string group = scope().kwarg("group");
  if (!channels::valid_group_name(group)) {
    close();
    return;
  }
  group_ = std::move(group);
  group_add(group_);
  accept();
}

void RoomConsumer::on_receive(std::string_view text) {
  group_send(group_, {{"type", "xx.oo"}, {"text", text}});
}

void RoomConsumer::xx_oo(const Message& event) { send(event["text"].get_ref<const std::string&>()); }

namespace {

// What Django's json_script does: JSON that is safe inside <script>.
std::string json_for_script(const Json& value) {
  std::string out;
  for (char c : value.dump()) {
    switch (c) {
      case '<': out += "\\u003C"; break;
      case '>': out += "\\u003E"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read template " + p.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

void PageConsumer::on_request(const channels::HttpRequest& request) {
  channels::Headers html{{"Content-Type", "text/html; charset=utf-8"}};
  if (request.method != "GET" && request.method != "HEAD") {
    send_response(405, "405 Method Not Allowed\n", {{"Allow", "GET, HEAD"}});
    return;
  }
  std::string page = read_file(resolve_path(options().value("template", "")));
  // {{ room_name_json }}: the room name, escaped for a <script> block.
  const std::string marker = "{{ room_name_json }}";
  if (auto pos = page.find(marker); pos != std::string::npos)
    page.replace(pos, marker.size(), json_for_script(scope().kwarg("room_name")));
  send_response(200, request.method == "HEAD" ? std::string{} : std::move(page), html);
}

void register_consumers(channels::Registry& registry, std::shared_ptr<Hub> hub) {
  if (!hub) hub = Hub::fallback();
  using channels::ConsumerKind;
  registry.add("chat.ChatConsumer", ConsumerKind::websocket, [hub] { return std::make_unique<ChatConsumer>(hub); })
      .add("chat.Rooms", ConsumerKind::http, [hub] { return std::make_unique<RoomsConsumer>(hub); })
      .add<RoomConsumer>("chat.RoomConsumer")
      .add<EchoConsumer>("chat.EchoConsumer")
      .add<PageConsumer>("chat.Page");
}

}  // namespace chat
