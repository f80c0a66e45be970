#include "limits.hpp"

#include <algorithm>
#include <cctype>

namespace chat {

std::size_t count_chars(std::string_view text) {
  // Every code point has exactly one byte that is not a continuation byte.
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string check_name(std::string_view name, const Limits& limits) {
  std::string rule = "a name has 1 to " + std::to_string(limits.name_chars) +
                     " characters: letters, digits, spaces, '-', '_' or '.', not starting or ending with a space";
  std::size_t n = count_chars(name);
  if (n == 0 || n > limits.name_chars) return rule;
  if (name.front() == ' ' || name.back() == ' ') return rule;
  for (unsigned char c : name) {
    if (c >= 0x80) continue;  // letters of other scripts (the input is valid UTF-8)
    if (std::isalnum(c) || c == ' ' || c == '-' || c == '_' || c == '.') continue;
    return rule;
  }
  // No control characters hide in the non-ASCII part either: U+0080..U+009F.
  if (name.find("\xC2\x80") != std::string_view::npos) return rule;
  for (std::size_t i = 0; i + 1 < name.size(); ++i)
    if (static_cast<unsigned char>(name[i]) == 0xC2 && static_cast<unsigned char>(name[i + 1]) < 0xA0) return rule;
  return {};
}

std::string check_message(std::string_view text, const Limits& limits) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return "a message must not be empty";
  if (count_chars(text) > limits.message_chars)
    return "a message has at most " + std::to_string(limits.message_chars) + " characters: split it";
  return {};
}

bool valid_member_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 &&
         std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

bool RateLimiter::allow(std::chrono::steady_clock::time_point now) {
  if (last_ != std::chrono::steady_clock::time_point{}) {
    double seconds = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + seconds * rate_);
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace chat
