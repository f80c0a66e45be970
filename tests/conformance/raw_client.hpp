#pragma once
// A WebSocket client written by hand for the conformance cases: it sends
// exactly the bytes a case asks for (bad bits, bad opcodes, broken UTF-8,
// hand-compressed frames) and reports exactly what the server answered.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <zlib.h>

namespace conformance {

namespace opcode {
inline constexpr std::uint8_t cont = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA;
}

/// One frame as the test writes it.
struct Frame {
  std::uint8_t op = opcode::text;
  std::string payload;
  bool fin = true;
  std::uint8_t rsv = 0;  // bits 0x4 (RSV1), 0x2 (RSV2), 0x1 (RSV3)
  bool masked = true;
  /// Under permessage-deflate, compress this data frame's message (false for
  /// frames whose bytes matter as written).
  bool compressible = true;
};

/// What came back from the server, in order.
struct Event {
  enum Kind { message, pong, close, eof, timeout, error } kind;
  std::uint8_t op = 0;     // text or binary, for a message
  std::string data;        // message or pong payload, or the close reason
  int code = 0;            // close: the status code (1005 when absent)
  bool operator==(const Event&) const = default;
};

std::string describe(const Event& e);

/// Raw deflate (RFC 7692 7.2.1): the compressed message without the final
/// 00 00 FF FF, with no context carried between messages.
std::string deflate_message(const std::string& data);

/// The inflating half, with the server's context kept between messages.
class Inflater {
 public:
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  std::optional<std::string> message(std::string compressed);

 private:
  z_stream z_{};
};

class RawClient {
 public:
  explicit RawClient(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Sends raw bytes and reads the HTTP response head (up to \r\n\r\n).
  std::string handshake(const std::string& request);
  /// A valid upgrade for `path`, offering permessage-deflate if asked;
  /// returns the response head.
  std::string open(const std::string& path, bool offer_deflate);

  void write(const std::string& bytes);
  static std::string encode(const Frame& f);
  void send(const Frame& f);

  /// Reads until the server closes TCP (or the timeout), answering a close
  /// frame with a close frame as RFC 6455 5.5.1 asks; inflates RSV1 messages.
  std::vector<Event> read_all();
  /// Reads the whole response after an HTTP-level refusal.
  std::string read_rest();

  bool deflate = false;

 private:
  std::optional<std::size_t> read_some(char* buf, std::size_t n);

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::chrono::steady_clock::time_point deadline_;
  std::string pending_;  // bytes read past the handshake head
  bool sent_close_ = false;
  Inflater inflater_;
};

}  // namespace conformance
