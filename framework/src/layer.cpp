#include <channels/layer.hpp>

#include <fmt/format.h>

#include <channels/errors.hpp>

namespace channels {

namespace {

constexpr std::size_t max_name_length = 100;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

class LayerCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "channel layer"; }
  std::string message(int ev) const override {
    switch (static_cast<LayerError>(ev)) {
      case LayerError::ok: return "ok";
      case LayerError::channel_full:
        return "channel is full: the message was dropped (raise channel_layer.capacity, or read faster)";
      case LayerError::unavailable: return "channel layer backend unavailable";
    }
    return "unknown channel layer error";
  }
};

}  // namespace

std::error_code make_error_code(LayerError e) {
  static const LayerCategory category;
  return {static_cast<int>(e), category};
}

bool valid_group_name(std::string_view name) {
  if (name.empty() || name.size() >= max_name_length) return false;
  for (char c : name)
    if (!name_char(c)) return false;
  return true;
}

bool valid_channel_name(std::string_view name) {
  if (name.empty() || name.size() >= max_name_length) return false;
  auto bang = name.find('!');
  std::string_view head = name.substr(0, bang);
  if (head.empty()) return false;
  for (char c : head)
    if (!name_char(c)) return false;
  if (bang == std::string_view::npos) return true;
  for (char c : name.substr(bang + 1))
    if (!name_char(c)) return false;
  return true;
}

void require_group_name(std::string_view name) {
  if (!valid_group_name(name))
    throw InvalidName(fmt::format(
        "invalid group name '{}': a group name is 1 to 99 characters of ASCII letters, digits, "
        "'-', '_' or '.' (for a chat room, build it like \"chat_\" + a slug of the room)",
        name));
}

void require_channel_name(std::string_view name) {
  if (!valid_channel_name(name))
    throw InvalidName(fmt::format(
        "invalid channel name '{}': a channel name is 1 to 99 characters of ASCII letters, digits, "
        "'-', '_' or '.', optionally followed by '!' and more of the same; use the name "
        "new_channel() or a consumer's channel_name() gives",
        name));
}

}  // namespace channels
