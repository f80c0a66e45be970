#include "raw_client.hpp"

#include <random>
#include <stdexcept>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace conformance {

namespace net = boost::asio;

std::string describe(const Event& e) {
  auto printable = [](const std::string& s) {
    std::string out;
    for (unsigned char c : s.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? std::string(1, char(c)) : "\\x" + std::to_string(c);
    return s.size() > 40 ? out + "...(" + std::to_string(s.size()) + " bytes)" : out;
  };
  switch (e.kind) {
    case Event::message: return std::string(e.op == opcode::text ? "text" : "binary") + " \"" + printable(e.data) + "\"";
    case Event::pong: return "pong \"" + printable(e.data) + "\"";
    case Event::close: return "close " + std::to_string(e.code);
    case Event::eof: return "tcp closed";
    case Event::timeout: return "timeout (server neither answered nor closed)";
    case Event::error: return "error: " + e.data;
  }
  return "?";
}

std::string deflate_message(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out(deflateBound(&z, data.size()) + 16, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_SYNC_FLUSH);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  if (out.size() >= 4 && out.compare(out.size() - 4, 4, std::string("\0\0\xff\xff", 4)) == 0) out.resize(out.size() - 4);
  return out;
}

Inflater::Inflater() { inflateInit2(&z_, -15); }
Inflater::~Inflater() { inflateEnd(&z_); }

std::optional<std::string> Inflater::message(std::string compressed) {
  compressed.append("\0\0\xff\xff", 4);
  std::string out;
  z_.next_in = reinterpret_cast<Bytef*>(compressed.data());
  z_.avail_in = static_cast<uInt>(compressed.size());
  char buf[16384];
  while (z_.avail_in > 0) {
    z_.next_out = reinterpret_cast<Bytef*>(buf);
    z_.avail_out = sizeof buf;
    int rc = inflate(&z_, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) return std::nullopt;
    out.append(buf, sizeof buf - z_.avail_out);
    if (rc == Z_BUF_ERROR && z_.avail_out != 0) break;
  }
  return out;
}

RawClient::RawClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : socket_(ioc_), deadline_(std::chrono::steady_clock::now() + timeout) {
  socket_.connect({net::ip::make_address("127.0.0.1"), port});
  socket_.set_option(net::ip::tcp::no_delay(true));
}

std::optional<std::size_t> RawClient::read_some(char* buf, std::size_t n) {
  std::optional<std::size_t> got;
  boost::system::error_code result;
  bool done = false;
  socket_.async_read_some(net::buffer(buf, n), [&](boost::system::error_code ec, std::size_t k) {
    done = true;
    result = ec;
    got = k;
  });
  ioc_.restart();
  ioc_.run_until(deadline_);
  if (!done) {
    socket_.cancel();
    ioc_.restart();
    ioc_.run();
    throw std::runtime_error("timeout");
  }
  if (result == net::error::eof) return std::nullopt;
  if (result) throw std::runtime_error(result.message());
  return got;
}

void RawClient::write(const std::string& bytes) {
  boost::system::error_code ec;
  net::write(socket_, net::buffer(bytes), ec);  // the server may already have closed: reads tell
}

std::string RawClient::handshake(const std::string& request) {
  write(request);
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos) {
    auto n = read_some(buf, sizeof buf);
    if (!n) break;
    head.append(buf, *n);
  }
  auto end = head.find("\r\n\r\n");
  if (end != std::string::npos) {
    pending_ = head.substr(end + 4);
    head.resize(end + 4);
  }
  return head;
}

std::string RawClient::open(const std::string& path, bool offer_deflate) {
  std::string req = "GET " + path +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (offer_deflate) req += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
  auto head = handshake(req + "\r\n");
  deflate = head.find("permessage-deflate") != std::string::npos;
  return head;
}

void RawClient::send(const Frame& f) {
  if (f.op == opcode::close) sent_close_ = true;
  write(encode(f));
}

std::string RawClient::encode(const Frame& f) {
  std::string out;
  out += static_cast<char>((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.op);
  std::uint8_t mask_bit = f.masked ? 0x80 : 0;
  auto n = f.payload.size();
  if (n < 126) {
    out += static_cast<char>(mask_bit | n);
  } else if (n < 65536) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) out += static_cast<char>((std::uint64_t(n) >> (8 * i)) & 0xff);
  }
  if (!f.masked) return out + f.payload;
  static std::mt19937 rng(12345);
  char key[4];
  for (char& k : key) k = static_cast<char>(rng());
  out.append(key, 4);
  for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(f.payload[i] ^ key[i % 4]);
  return out;
}

std::vector<Event> RawClient::read_all() {
  std::vector<Event> events;
  std::string in = std::move(pending_);
  std::string message;
  std::uint8_t message_op = 0;
  bool message_compressed = false;
  bool closed = false;
  char buf[65536];
  try {
    for (;;) {
      // Parse every whole frame buffered so far (server frames are unmasked).
      for (;;) {
        if (in.size() < 2) break;
        auto b0 = static_cast<std::uint8_t>(in[0]), b1 = static_cast<std::uint8_t>(in[1]);
        std::size_t len = b1 & 0x7f, at = 2;
        if (len == 126) {
          if (in.size() < 4) break;
          len = (std::size_t(std::uint8_t(in[2])) << 8) | std::uint8_t(in[3]);
          at = 4;
        } else if (len == 127) {
          if (in.size() < 10) break;
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | std::uint8_t(in[2 + i]);
          at = 10;
        }
        if (b1 & 0x80) {
          events.push_back({Event::error, 0, "the server sent a masked frame"});
          return events;
        }
        if (in.size() < at + len) break;
        std::string payload = in.substr(at, len);
        in.erase(0, at + len);
        std::uint8_t op = b0 & 0x0f;
        bool fin = b0 & 0x80;
        if (closed) {
          events.push_back({Event::error, op, "a frame after the close frame"});
          continue;
        }
        if (op == opcode::close) {
          int code = payload.size() >= 2 ? (std::uint8_t(payload[0]) << 8) | std::uint8_t(payload[1]) : 1005;
          events.push_back({Event::close, 0, payload.size() > 2 ? payload.substr(2) : "", code});
          closed = true;
          // Answer as an endpoint must (unless the case closed first): echo the status code.
          if (!sent_close_) send({opcode::close, payload.substr(0, 2)});
        } else if (op == opcode::pong) {
          events.push_back({Event::pong, 0, payload});
        } else if (op == opcode::ping) {
          send({opcode::pong, payload});
        } else {
          if (op != opcode::cont) {
            message_op = op;
            message_compressed = b0 & 0x40;
            message.clear();
          }
          message += payload;
          if (fin) {
            if (message_compressed) {
              auto plain = inflater_.message(message);
              if (!plain) {
                events.push_back({Event::error, 0, "the server sent bad compressed data"});
                return events;
              }
              message = *plain;
            }
            events.push_back({Event::message, message_op, message});
          }
        }
      }
      auto n = read_some(buf, sizeof buf);
      if (!n) {
        events.push_back({Event::eof});
        return events;
      }
      in.append(buf, *n);
    }
  } catch (const std::exception& e) {
    events.push_back({std::string(e.what()) == "timeout" ? Event::timeout : Event::error, 0,
                      std::string(e.what())});
  }
  return events;
}

std::string RawClient::read_rest() {
  std::string out = std::move(pending_);
  char buf[4096];
  try {
    while (auto n = read_some(buf, sizeof buf)) out.append(buf, *n);
  } catch (const std::exception& e) {
    out += "\n[" + std::string(e.what()) + "]";
  }
  return out;
}

}  // namespace conformance
