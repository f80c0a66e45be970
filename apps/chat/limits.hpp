#pragma once
// What the chat accepts from a client, checked on the server: message length,
// display names and the message rate of one connection.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace chat {

struct Limits {
  std::size_t history = 50;         // messages a newcomer gets
  std::size_t message_chars = 2000; // characters (code points) per message
  std::size_t name_chars = 32;
  double rate = 5;                  // a member's messages per second, on average...
  double burst = 20;                // ...after a burst of this many
  // Clients of the tutorial's protocol (they never join: scripts, bots,
  // benchmarks that compare with Django Channels' tutorial) are held to a
  // machine's pace, not a person's: still closed if they flood.
  double tutorial_rate = 1000;
  double tutorial_burst = 1000;
  int strikes = 10;                 // messages refused in a row before close 1008
};

/// Characters (UTF-8 code points) in `text`, which is valid UTF-8.
std::size_t count_chars(std::string_view text);

/// Empty if `name` is a good display name, else what is wrong with it, in a
/// sentence that says what to write instead.
std::string check_name(std::string_view name, const Limits& limits);

/// Empty if `text` can be sent, else why not.
std::string check_message(std::string_view text, const Limits& limits);

/// A member id from the client: letters, digits, '-' and '_', 1 to 64.
bool valid_member_id(std::string_view id);

/// A token bucket: `burst` messages at once, then `rate` a second.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  /// True if one more message may go now (and counts it).
  bool allow(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace chat
