#include "consumers.hpp"

#include <fstream>
#include <sstream>

namespace chat {

using channels::Json;
using channels::Message;

// A room name becomes part of a group name, which Channels limits to ASCII
// letters, digits, '-', '_' and '.' (under 100 characters).
static bool valid_room(std::string_view room) {
  return channels::valid_group_name("chat_" + std::string(room));
}

ChatConsumer::ChatConsumer() { handle("chat.message", &ChatConsumer::chat_message); }

void ChatConsumer::on_connect() {
  std::string room = scope().kwarg("room_name");
  if (!valid_room(room)) {
    close();  // refused: HTTP 403
    return;
  }
  group_ = "chat_" + room;
  group_add(group_);
  accept();
}

void ChatConsumer::on_receive_json(const Json& content) {
  auto it = content.find("message");
  if (!content.is_object() || it == content.end() || !it->is_string()) {
    send_json({{"error", "expected {\"message\": \"some text\"}"}});
    return;
  }
  group_send(group_, {{"type", "chat.message"}, {"message", *it}});
}

void ChatConsumer::on_disconnect(int) {
  if (!group_.empty()) group_discard(group_);
}

void ChatConsumer::chat_message(const Message& event) { send_json({{"message", event["message"]}}); }

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

void register_consumers(channels::Registry& registry) {
  registry.add<ChatConsumer>("chat.ChatConsumer")
      .add<RoomConsumer>("chat.RoomConsumer")
      .add<EchoConsumer>("chat.EchoConsumer")
      .add<PageConsumer>("chat.Page");
}

}  // namespace chat
