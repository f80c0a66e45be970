#pragma once
// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing
// above U+10FFFF. Shared by the scope (decoded paths), the Redis wire and
// the frame reader (text messages, checked as their bytes arrive).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace channels::detail {

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
inline std::size_t utf8_sequence(std::string_view s) {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  if (s.empty()) return 0;
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

/// UTF-8 checked a piece at a time: a sequence may straddle pieces.
class Utf8Stream {
 public:
  /// False as soon as the bytes seen so far cannot start valid UTF-8.
  bool feed(const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
      if (need_ == 0) {
        // ASCII runs, eight bytes at a time.
        while (i + 8 <= n) {
          std::uint64_t v;
          std::memcpy(&v, p + i, 8);
          if (v & 0x8080808080808080ull) break;
          i += 8;
        }
        if (i == n) break;
        unsigned char c = p[i++];
        if (c < 0x80) continue;
        if (c >= 0xC2 && c <= 0xDF) {
          need_ = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
          need_ = 2;
          lo_ = c == 0xE0 ? 0xA0 : 0x80;  // overlong
          hi_ = c == 0xED ? 0x9F : 0xBF;  // surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
          need_ = 3;
          lo_ = c == 0xF0 ? 0x90 : 0x80;  // overlong
          hi_ = c == 0xF4 ? 0x8F : 0xBF;  // above U+10FFFF
        } else {
          return false;
        }
      } else {
        unsigned char c = p[i++];
        if (c < lo_ || c > hi_) return false;
        lo_ = 0x80;
        hi_ = 0xBF;
        --need_;
      }
    }
    return true;
  }
  /// No sequence left half finished.
  bool complete() const { return need_ == 0; }
  void reset() { *this = Utf8Stream(); }

 private:
  unsigned char need_ = 0;  // continuation bytes still expected
  unsigned char lo_ = 0x80, hi_ = 0xBF;  // the range the next one must fall in
};

inline bool is_utf8(std::string_view s) {
  Utf8Stream u;
  return u.feed(reinterpret_cast<const unsigned char*>(s.data()), s.size()) && u.complete();
}

}  // namespace channels::detail
