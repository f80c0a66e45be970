#pragma once
// Private to the server: the client-to-server half of RFC 6455 framing,
// without I/O. The session hands it whatever one socket read returned; it
// unmasks in place, checks every rule of sections 5 and 7 (and UTF-8 as
// each fragment arrives, so a bad text message fails before it ends), and
// reports whole messages and control frames to a visitor.
//
// Why not Beast's reader: Beast hands over one message per asynchronous
// read and completes each through the event loop, so a read that brought
// eight frames costs eight trips (and a reply write each unless corked),
// and an idle connection keeps Beast's 2.5 KiB state plus a read buffer.
// Here a read's frames are handled in one call, a message that arrived
// whole in one read is seen where it lies (no copy), and an idle reader is
// a few dozen bytes. Beast still does the handshake, and the whole
// connection when permessage-deflate is negotiated.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "utf8.hpp"

namespace channels::detail {

/// Close codes a peer may send (RFC 6455 7.4; 1012 and 1013 from the IANA
/// registry, as Beast and browsers accept them).
inline bool receivable_close_code(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1013) || (code >= 3000 && code <= 4999);
}

/// XORs `n` bytes with the masking key, the first with key[offset % 4].
inline void unmask(char* p, std::size_t n, const unsigned char key[4], std::size_t offset) {
  unsigned char k[8];
  for (int i = 0; i < 8; ++i) k[i] = key[(offset + i) & 3];
  std::uint64_t k8;
  std::memcpy(&k8, k, 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    v ^= k8;
    std::memcpy(p + i, &v, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<char>(p[i] ^ k[i & 7]);
}

class FrameReader {
 public:
  /// What a read found wrong: the code to close with, and why.
  struct Failure {
    int code = 0;  // 0: nothing wrong
    const char* reason = "";
    explicit operator bool() const { return code != 0; }
  };

  explicit FrameReader(std::size_t max_message) : max_message_(max_message) {}

  /// Handles the frames in `data` (unmasking it in place), calling on `v`:
  ///   message(bool text, std::string_view payload)   a whole data message
  ///   ping(std::string_view), pong(std::string_view)
  ///   close(int code, std::string_view reason)       1005 when it had no code
  /// Bytes after a close frame are ignored, as is everything after a failure
  /// (the connection is over either way). A frame cut off at the end of
  /// `data` is kept and finished by the next call.
  template <class Visitor>
  Failure read(char* data, std::size_t size, Visitor& v) {
    char* p = data;
    char* end = data + size;
    while (p < end && !done_) {
      if (!in_payload_) {
        if (auto f = read_header(p, end)) return fail(f);
        if (!in_payload_) break;  // header cut off: wait for more
      }
      std::size_t take = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(end - p)));
      unmask(p, take, key_, key_offset_);
      key_offset_ += take;
      remaining_ -= take;
      if (opcode_ >= 8) {
        control_.append(p, take);
      } else {
        if (message_op_ == 1 && !utf8_.feed(reinterpret_cast<const unsigned char*>(p), take))
          return fail({1007, "invalid UTF-8 in a text message"});
        if (remaining_ == 0 && fin_ && message_.empty()) {
          // The whole message is here: hand it over where it lies.
          p += take;
          if (auto f = end_frame(v, std::string_view(p - take, take))) return fail(f);
          continue;
        }
        message_.append(p, take);
      }
      p += take;
      if (remaining_ == 0) {
        if (auto f = end_frame(v, {})) return fail(f);
      }
    }
    return {};
  }

  /// A close frame was read (or the stream failed): nothing more is read.
  bool done() const { return done_; }

 private:
  Failure fail(Failure f) {
    done_ = true;
    return f;
  }

  // Parses the next frame header, from what is left of an earlier read
  // plus `p`. Leaves in_payload_ false if the header is not complete yet.
  Failure read_header(char*& p, char* end) {
    const unsigned char* h;
    std::size_t avail;
    if (head_len_ == 0) {
      h = reinterpret_cast<const unsigned char*>(p);
      avail = static_cast<std::size_t>(end - p);
    } else {
      std::size_t copy = std::min<std::size_t>(sizeof head_ - head_len_, static_cast<std::size_t>(end - p));
      std::memcpy(head_ + head_len_, p, copy);
      h = head_;
      avail = head_len_ + copy;
    }
    if (avail < 2) return keep_partial(p, end, h, avail);
    std::size_t len7 = h[1] & 0x7f;
    std::size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
    if ((h[1] & 0x80) == 0) return {1002, "client frames must be masked"};
    if (avail < need) return keep_partial(p, end, h, avail);

    bool fin = h[0] & 0x80;
    unsigned opcode = h[0] & 0x0f;
    if (h[0] & 0x70) return {1002, "reserved bits set without an extension"};
    std::uint64_t len = len7;
    if (len7 == 126) {
      len = (std::uint64_t{h[2]} << 8) | h[3];
      if (len < 126) return {1002, "frame length not in its shortest form"};
    } else if (len7 == 127) {
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | h[2 + i];
      if (len >> 63) return {1002, "frame length too large"};
      if (len <= 0xffff) return {1002, "frame length not in its shortest form"};
    }
    if (opcode >= 8) {
      if (opcode > 10) return {1002, "reserved opcode"};
      if (!fin) return {1002, "fragmented control frame"};
      if (len > 125) return {1002, "control frame longer than 125 bytes"};
    } else if (opcode == 0) {
      if (message_op_ == 0) return {1002, "continuation frame without a message to continue"};
    } else {
      if (opcode > 2) return {1002, "reserved opcode"};
      if (message_op_ != 0) return {1002, "new message before the fragmented one ended"};
    }
    if (opcode < 8 && message_.size() + len > max_message_) return {1009, "message too big"};

    std::memcpy(key_, h + need - 4, 4);
    // Consumed from `p`: everything of the header not already kept.
    p += need - head_len_;
    head_len_ = 0;
    fin_ = fin;
    opcode_ = opcode;
    remaining_ = len;
    key_offset_ = 0;
    in_payload_ = true;
    if (opcode == 1 || opcode == 2) {
      message_op_ = opcode;
      utf8_.reset();
    }
    return {};
  }

  Failure keep_partial(char*& p, char* end, const unsigned char* h, std::size_t avail) {
    if (h != head_) std::memcpy(head_, h, avail);
    head_len_ = avail;
    p = end;
    return {};
  }

  // A frame's payload is complete. `whole` is the payload of a message
  // that arrived in one piece (message_ is used otherwise).
  template <class Visitor>
  Failure end_frame(Visitor& v, std::string_view whole) {
    in_payload_ = false;
    if (opcode_ >= 8) {
      std::string_view payload = control_;
      if (opcode_ == 8) {
        done_ = true;
        if (payload.size() == 1) return {1002, "close frame of one byte"};
        int code = 1005;
        std::string_view reason;
        if (payload.size() >= 2) {
          code = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
          reason = payload.substr(2);
          if (!receivable_close_code(code)) return {1002, "invalid close code"};
          if (!is_utf8(reason)) return {1002, "invalid UTF-8 in the close reason"};
        }
        v.close(code, reason);
      } else if (opcode_ == 9) {
        v.ping(payload);
      } else if (opcode_ == 10) {
        v.pong(payload);
      }
      control_.clear();
      return {};
    }
    if (!fin_) return {};
    bool text = message_op_ == 1;
    if (text && !utf8_.complete()) return {1007, "text message ends inside a UTF-8 sequence"};
    message_op_ = 0;
    if (!whole.data()) {
      v.message(text, std::string_view(message_));
      message_.clear();
      // A large message must not keep its buffer on the connection.
      if (message_.capacity() > kept_capacity) std::string().swap(message_);
    } else {
      v.message(text, whole);
    }
    return {};
  }

  static constexpr std::size_t kept_capacity = 16 * 1024;

  std::size_t max_message_;
  std::string message_;  // fragments (or parts of a frame) read so far
  std::string control_;  // a control frame's payload read so far
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame still to come
  std::size_t key_offset_ = 0;
  Utf8Stream utf8_;
  unsigned char key_[4] = {};
  unsigned char head_[14] = {};
  unsigned char head_len_ = 0;
  unsigned char opcode_ = 0;
  unsigned char message_op_ = 0;  // 1 or 2 while a message is being read, else 0
  bool fin_ = false;
  bool in_payload_ = false;
  bool done_ = false;
};

}  // namespace channels::detail
