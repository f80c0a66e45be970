#pragma once
// Parsing a text frame from a client as JSON, for the JSON consumers.

#include <cstddef>
#include <string_view>

#include <channels/message.hpp>
#include <channels/websocket_consumer.hpp>

namespace channels::detail {

// How deeply arrays and objects nest in `text`, counting no further than
// `limit + 1`. nlohmann's parser is iterative, but copying, comparing and
// dumping a value recurse once per level: a frame of a million '[' parses
// fine and then overflows the stack of whoever echoes it. One pass over the
// bytes, outside strings, bounds that before parsing.
inline std::size_t json_nesting(std::string_view text, std::size_t limit) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"': in_string = true; break;
      case '[':
      case '{':
        if (++depth > deepest && (deepest = depth) > limit) return deepest;
        break;
      case ']':
      case '}':
        if (depth) --depth;
        break;
      default: break;
    }
  }
  return deepest;
}

struct JsonFrame {
  Json content;
  int close_code = 0;  // non-zero: close with it and `reason`
  const char* reason = nullptr;
};

inline JsonFrame parse_json_frame(std::string_view text, std::size_t max_depth) {
  JsonFrame f;
  if (json_nesting(text, max_depth) > max_depth) {
    f.close_code = close_code::too_big;
    f.reason = "JSON nested too deeply: at most json_max_depth levels of arrays and objects";
    return f;
  }
  f.content = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (f.content.is_discarded()) {
    f.close_code = close_code::invalid_payload;
    f.reason = "invalid JSON: expected one JSON value per text frame";
  }
  return f;
}

}  // namespace channels::detail
