// libFuzzer: a whole connection fed raw bytes. An in-process server (echo
// consumer, permessage-deflate on, small limits) on a loopback port; each input
// is written to a fresh TCP connection, the client half-closes, and the
// server's answer is read until it closes. The first byte picks the shape:
//   bit 0: the input is raw bytes (HTTP request and all) rather than frames
//   bit 1: the handshake offers permessage-deflate
// Frame inputs are records [b0 b1 len payload...] turned into masked frames
// (b0: FIN/RSV/opcode as sent, b1 bit 0: send unmasked), so the fuzzer
// spends its time past the handshake and the masking.

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <channels/channels.hpp>
#include <channels/log.hpp>

namespace {

namespace net = boost::asio;

struct Echo : channels::WebsocketConsumer {
  void on_receive(std::string_view t) override { send(t); }
  void on_receive_bytes(std::string_view b) override { send_bytes(b); }
};

struct Json : channels::JsonWebsocketConsumer {
  void on_receive_json(const channels::Json& j) override { send_json(j); }
};

// Destroyed (shut down, its threads joined) at exit before spdlog's
// registry, which was created first: a server thread must not log into a
// logger that exit has freed.
channels::Server& server() {
  static std::unique_ptr<channels::Server> s = [] {
    channels::log().set_level(spdlog::level::off);
    channels::ServerOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.threads = 1;
    o.max_message_bytes = 4096;
    o.handshake_timeout = std::chrono::milliseconds(2000);
    o.permessage_deflate.enabled = true;
    o.drain_timeout = std::chrono::milliseconds(500);
    using namespace channels;
    auto app = std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
        {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("echo/", as_app<Echo>()),
                                                                     path("json/<str:room>/", as_app<Json>())})}});
    auto srv = std::make_unique<channels::Server>(o, app, std::make_shared<InMemoryChannelLayer>());
    srv->start();
    return srv;
  }();
  return *s;
}

std::string frames(std::string_view in) {
  std::string out;
  std::uint32_t key_seed = 0x9e3779b9;
  while (in.size() >= 3) {
    auto b0 = static_cast<std::uint8_t>(in[0]);
    bool unmasked = in[1] & 1;
    std::size_t len = std::min<std::size_t>(static_cast<std::uint8_t>(in[2]), in.size() - 3);
    std::string_view payload = in.substr(3, len);
    in.remove_prefix(3 + len);
    out += static_cast<char>(b0);
    out += static_cast<char>((unmasked ? 0 : 0x80) | (len < 126 ? len : 126));
    if (len >= 126) {
      out += '\0';
      out += static_cast<char>(len);
    }
    if (unmasked) {
      out += payload;
      continue;
    }
    char key[4];
    for (char& k : key) k = static_cast<char>(key_seed = key_seed * 1664525 + 1013904223);
    out.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > 16384) return 0;
  auto port = server().port();
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string bytes;
  if (data[0] & 1) {
    bytes = in;
  } else {
    bytes = std::string("GET ") + ((data[0] & 4) ? "/json/r/" : "/echo/") +
            " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (data[0] & 2) bytes += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    bytes += "\r\n" + frames(in);
  }
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  boost::system::error_code ec;
  s.connect({net::ip::make_address("127.0.0.1"), port}, ec);
  if (ec) __builtin_trap();  // the server must keep accepting
  net::write(s, net::buffer(bytes), ec);
  s.shutdown(net::ip::tcp::socket::shutdown_send, ec);
  // Read what the server says until it closes; a server that neither answers
  // nor closes within the time limit is a hang (libFuzzer's -timeout).
  char buf[8192];
  for (;;) {
    s.read_some(net::buffer(buf), ec);
    if (ec) break;
  }
  return 0;
}
