// RFC 6455 and RFC 7692 to the letter, over a plain TCP socket: each case
// writes bytes by hand (bad bits, bad opcodes, broken UTF-8, compressed
// frames made with zlib) to an echo server and checks exactly what comes
// back, down to the close code and the TCP close. Every frame case runs twice:
// without extensions, and with permessage-deflate negotiated and its data
// messages compressed. Prints "N passed, N failed"; exits non-zero on a failure.
//
// Usage: conformance_test [--verbose] [NAME-SUBSTRING]

#include <atomic>
#include <cstring>
#include <iostream>
#include <mutex>

#include <channels/channels.hpp>
#include <channels/log.hpp>

#include "../net/test_server.hpp"
#include "raw_client.hpp"

using namespace conformance;
using channels::ServerOptions;
using testing_support::TestServer;

namespace {

// Small enough to test cheaply, large enough for a 126-byte-length frame.
constexpr std::size_t max_message = 64 * 1024;

// What on_receive saw, so that a case can show control frames never reach it.
std::mutex seen_mutex;
std::vector<std::string> seen;

struct Echo : channels::WebsocketConsumer {
  void on_receive(std::string_view t) override {
    remember(t);
    send(t);
  }
  void on_receive_bytes(std::string_view b) override {
    remember(b);
    send_bytes(b);
  }
  static void remember(std::string_view m) {
    std::lock_guard l(seen_mutex);
    seen.emplace_back(m);
  }
};

channels::ApplicationPtr app() {
  using namespace channels;
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("echo/", as_app<Echo>())})}});
}

// ---- building cases ----

Frame text(std::string s, bool fin = true) { return {opcode::text, std::move(s), fin}; }
Frame binary(std::string s, bool fin = true) { return {opcode::binary, std::move(s), fin}; }
Frame cont(std::string s, bool fin = true) { return {opcode::cont, std::move(s), fin}; }
Frame ping(std::string s, bool fin = true) { return {opcode::ping, std::move(s), fin}; }
Frame pong(std::string s) { return {opcode::pong, std::move(s)}; }
std::string code_bytes(int code) { return {static_cast<char>(code >> 8), static_cast<char>(code & 0xff)}; }
Frame close_frame(int code, std::string reason = {}) { return {opcode::close, code_bytes(code) + reason}; }
Frame raw(Frame f) {  // sent exactly as written, also under permessage-deflate
  f.compressible = false;
  return f;
}

Event got_text(std::string s) { return {Event::message, opcode::text, std::move(s)}; }
Event got_binary(std::string s) { return {Event::message, opcode::binary, std::move(s)}; }
Event got_pong(std::string s) { return {Event::pong, 0, std::move(s)}; }
Event got_close(int code) { return {Event::close, 0, {}, code}; }
const Event tcp_closed{Event::eof};

enum class Modes { both, plain_only, deflate_only };
using Seen = std::vector<std::string>;

struct Case {
  std::string name;
  std::vector<Frame> frames;
  std::vector<Event> expect;  // close reasons are not compared
  Modes modes = Modes::both;
  /// What on_receive must have seen (checked when set).
  std::optional<std::vector<std::string>> received = std::nullopt;
};

// A case the client ends with a clean close 1000 after the frames.
Case echo_case(std::string name, std::vector<Frame> frames, std::vector<Event> replies,
               std::optional<std::vector<std::string>> received = std::nullopt) {
  frames.push_back(close_frame(1000));
  replies.push_back(got_close(1000));
  replies.push_back(tcp_closed);
  return {std::move(name), std::move(frames), std::move(replies), Modes::both, std::move(received)};
}

// A case the server must fail with `code`, then close TCP.
Case fail_case(std::string name, std::vector<Frame> frames, int code, Modes modes = Modes::both) {
  return {std::move(name), std::move(frames), {got_close(code), tcp_closed}, modes};
}

std::vector<Case> frame_cases() {
  const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // κόσμε
  std::vector<Case> c;
  // Framing and echo.
  c.push_back(echo_case("text message echoed", {text("Hello, world")}, {got_text("Hello, world")}, Seen{"Hello, world"}));
  c.push_back(echo_case("binary message echoed", {binary(std::string("\x00\xff\x10", 3))},
                        {got_binary(std::string("\x00\xff\x10", 3))}));
  c.push_back(echo_case("empty text message echoed", {text("")}, {got_text("")}));
  c.push_back(echo_case("126-byte and 65536-byte lengths", {text(std::string(126, 'x')), binary(std::string(65536, 'y'))},
                        {got_text(std::string(126, 'x')), got_binary(std::string(65536, 'y'))}));
  c.push_back(echo_case("fragmented text delivered whole", {text("Hel", false), cont("lo, ", false), cont("world")},
                        {got_text("Hello, world")}, Seen{"Hello, world"}));
  c.push_back(echo_case("empty fragments", {text("", false), cont("", false), cont("a")}, {got_text("a")}));
  c.push_back(echo_case("ping answered with a pong of the same payload", {ping("are you there?")},
                        {got_pong("are you there?")}, Seen{}));
  c.push_back(echo_case("ping of 125 bytes answered", {ping(std::string(125, 'p'))}, {got_pong(std::string(125, 'p'))}));
  c.push_back(echo_case("unsolicited pong ignored", {pong("hi"), text("after")}, {got_text("after")}, Seen{"after"}));
  c.push_back(echo_case("ping between fragments: pong first, message whole",
                        {text("Hello, ", false), ping("p"), cont("world")}, {got_pong("p"), got_text("Hello, world")},
                        Seen{"Hello, world"}));
  c.push_back(echo_case("valid UTF-8 split inside a character across fragments",
                        {text(kosme.substr(0, 3), false), cont(kosme.substr(3, 4), false), cont(kosme.substr(7))},
                        {got_text(kosme)}));
  c.push_back(echo_case(
      "message at the size limit echoed", {binary(std::string(max_message, 'm'))}, {got_binary(std::string(max_message, 'm'))}));

  // Masking, reserved bits, opcodes.
  c.push_back(fail_case("unmasked client frame: 1002", {raw({opcode::text, "hi", true, 0, false})}, 1002));
  c.push_back(fail_case("RSV1 without an extension: 1002", {raw({opcode::text, "hi", true, 4})}, 1002, Modes::plain_only));
  c.push_back(fail_case("RSV2: 1002", {raw({opcode::text, "hi", true, 2})}, 1002));
  c.push_back(fail_case("RSV3: 1002", {raw({opcode::text, "hi", true, 1})}, 1002));
  c.push_back(fail_case("RSV1 on a ping: 1002", {raw({opcode::ping, "hi", true, 4})}, 1002));
  c.push_back(fail_case("RSV1 on a continuation frame: 1002",
                        {raw({opcode::text, "a", false, 0}), raw({opcode::cont, "b", true, 4})}, 1002));
  for (int op : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF})
    c.push_back(fail_case("reserved opcode " + std::to_string(op) + ": 1002", {raw({std::uint8_t(op), "x"})}, 1002));
  c.push_back(fail_case("reserved opcode after a good message: 1002, message still echoed", {text("ok")}, 1002));
  c.back().frames.push_back(raw({5, ""}));
  c.back().expect.insert(c.back().expect.begin(), got_text("ok"));

  // Control frames.
  c.push_back(fail_case("fragmented ping: 1002", {ping("a", false), cont("b")}, 1002));
  c.push_back(fail_case("ping of 126 bytes: 1002", {ping(std::string(126, 'p'))}, 1002));
  c.push_back(fail_case("close of 126 bytes: 1002", {close_frame(1000, std::string(124, 'r'))}, 1002));
  c.push_back(fail_case("fragmented close: 1002", {raw({opcode::close, code_bytes(1000), false})}, 1002));

  // Fragmentation.
  c.push_back(fail_case("continuation without a start: 1002", {cont("x")}, 1002));
  c.push_back(fail_case("continuation after a whole message: 1002", {text("a"), cont("b")}, 1002));
  c.back().expect.insert(c.back().expect.begin(), got_text("a"));
  c.push_back(fail_case("new text frame inside a fragmented message: 1002", {text("a", false), text("b")}, 1002));
  c.push_back(fail_case("new binary frame inside a fragmented message: 1002", {binary("a", false), binary("b")}, 1002));

  // UTF-8.
  for (auto [what, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"0xFF", "\xff"},
           {"an overlong '/'", "\xc0\xaf"},
           {"a surrogate", "\xed\xa0\x80"},
           {"a code point above U+10FFFF", "\xf4\x90\x80\x80"},
           {"a lone continuation byte", "a\x80z"}})
    c.push_back(fail_case("invalid UTF-8 (" + what + "): 1007", {text(kosme + bytes + "edited")}, 1007));
  c.push_back(fail_case("invalid UTF-8 in the second fragment: 1007", {text(kosme, false), cont("\xed\xa0\x80")}, 1007));
  c.push_back(fail_case("invalid sequence split across fragments: 1007",
                        {text("ab\xf4", false), cont("\x90\x80\x80")}, 1007));
  c.push_back(fail_case("incomplete character at the end of a message: 1007", {text("abc\xe1\xbd")}, 1007));
  c.push_back(fail_case("incomplete character at the end of a fragmented message: 1007",
                        {text("abc\xe1", false), cont("\xbd")}, 1007));
  c.push_back(echo_case("invalid UTF-8 in a binary message is fine", {binary("\xff\xfe")}, {got_binary("\xff\xfe")}));
  // RFC 6455 8.1 asks to fail the connection without naming a code; Beast
  // answers 1002 (Autobahn 7.5.1 accepts 1002 or 1007).
  c.push_back(fail_case("invalid UTF-8 in a close reason: 1002", {close_frame(1000, "\xce\xba\xff")}, 1002));

  // Close codes and the closing handshake.
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
    c.push_back({"close " + std::to_string(code) + " echoed", {close_frame(code, "bye")}, {got_close(code), tcp_closed}});
  c.push_back({"empty close answered with 1000", {{opcode::close, ""}}, {got_close(1000), tcp_closed}});
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
    c.push_back(fail_case("close code " + std::to_string(code) + ": 1002", {close_frame(code)}, 1002));
  c.push_back(fail_case("close payload of 1 byte: 1002", {{opcode::close, std::string("\x03", 1)}}, 1002));
  c.push_back({"frames after the close frame are ignored",
               {close_frame(1000), text("too late"), ping("too late")},
               {got_close(1000), tcp_closed}});

  // Limits.
  c.push_back(fail_case("message over the size limit: 1009", {binary(std::string(max_message + 1, 'm'))}, 1009));
  c.push_back(fail_case("fragmented message over the size limit: 1009",
                        {text(std::string(30000, 'a'), false), cont(std::string(30000, 'b'), false),
                         cont(std::string(30000, 'c'))},
                        1009));

  // permessage-deflate only.
  c.push_back(echo_case("compressed and plain messages mixed",
                        {text("plain and simple"), text("compressed, compressed, compressed")},
                        {got_text("plain and simple"), got_text("compressed, compressed, compressed")}));
  c.back().frames[0].compressible = false;
  c.back().modes = Modes::deflate_only;
  c.push_back(fail_case("corrupt compressed data: 1007",
                        {raw({opcode::text, "\xff\xff\xff\xff\xff", true, 4})}, 1007, Modes::deflate_only));
  return c;
}

// Under permessage-deflate: each data message (a start frame and its
// continuations) is compressed as a whole and the compressed bytes are
// spread over the same frames, RSV1 on the first (RFC 7692 6.1).
std::vector<Frame> compress(std::vector<Frame> frames) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    auto& start = frames[i];
    if ((start.op != opcode::text && start.op != opcode::binary) || !start.compressible) continue;
    std::vector<std::size_t> parts{i};
    std::string plain = start.payload;
    for (std::size_t j = i + 1; !frames[parts.back()].fin && j < frames.size(); ++j) {
      if (frames[j].op == opcode::cont) {
        parts.push_back(j);
        plain += frames[j].payload;
      } else if (frames[j].op < opcode::close) {
        break;  // a new message inside this one: the case is about that
      }
    }
    std::string packed = deflate_message(plain);
    std::size_t at = 0;
    for (std::size_t k = 0; k < parts.size(); ++k) {
      std::size_t n = k + 1 == parts.size() ? packed.size() - at : packed.size() / parts.size();
      frames[parts[k]].payload = packed.substr(at, n);
      at += n;
    }
    start.rsv |= 4;
  }
  return frames;
}

struct Runner {
  bool verbose = false;
  std::string filter;
  int passed = 0, failed = 0;

  bool selected(const std::string& name) const { return filter.empty() || name.find(filter) != std::string::npos; }

  void report(const std::string& name, const std::string& problem) {
    if (problem.empty()) {
      ++passed;
      if (verbose) std::cout << "  ok    " << name << "\n";
    } else {
      ++failed;
      std::cout << "  FAIL  " << name << "\n        " << problem << "\n";
    }
  }

  void run_frames(const Case& c, std::uint16_t port, bool deflate) {
    std::string name = (deflate ? "[deflate] " : "[plain]   ") + c.name;
    if (!selected(name)) return;
    {
      std::lock_guard l(seen_mutex);
      seen.clear();
    }
    std::string problem;
    try {
      RawClient client(port);
      auto head = client.open("/echo/", deflate);
      if (head.rfind("HTTP/1.1 101", 0) != 0) return report(name, "handshake refused: " + head);
      if (client.deflate != deflate) return report(name, "permessage-deflate negotiated: " + std::to_string(client.deflate));
      for (const auto& f : deflate ? compress(c.frames) : c.frames) client.send(f);
      auto events = client.read_all();
      for (auto& e : events)
        if (e.kind == Event::close) e.data.clear();
      if (events != c.expect) {
        problem = "expected:";
        for (auto& e : c.expect) problem += " [" + describe(e) + "]";
        problem += "\n        got:     ";
        for (auto& e : events) problem += " [" + describe(e) + "]";
      } else if (c.received) {
        std::lock_guard l(seen_mutex);
        if (seen != *c.received) problem = "on_receive saw " + std::to_string(seen.size()) + " message(s), not " +
                                           std::to_string(c.received->size());
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
    report(name, problem);
  }

  // Frames written in the same write as the upgrade request, before the
  // 101 (RFC 6455 4.1: the client must wait; some do not): the server reads
  // them after its answer rather than losing them, and when the answer
  // turns on compression, which the frames could not know, fails with 1002.
  void run_early(const std::string& name, std::uint16_t port, bool offer_deflate, const std::string& early,
                 const std::string& after_101, const std::vector<Event>& expect) {
    std::string full = "[early]   " + name;
    if (!selected(full)) return;
    std::string problem;
    try {
      RawClient client(port);
      std::string request =
          "GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
      if (offer_deflate) request += "Sec-WebSocket-Extensions: permessage-deflate\r\n";
      request += "\r\n";
      auto head = client.handshake(request + early);
      if (head.rfind("HTTP/1.1 101", 0) != 0) return report(full, "handshake refused: " + head);
      if (!after_101.empty()) client.write(after_101);
      auto events = client.read_all();
      for (auto& e : events)
        if (e.kind == Event::close) e.data.clear();
      if (events != expect) {
        problem = "expected:";
        for (auto& e : expect) problem += " [" + describe(e) + "]";
        problem += "\n        got:     ";
        for (auto& e : events) problem += " [" + describe(e) + "]";
      }
    } catch (const std::exception& e) {
      problem = e.what();
    }
    report(full, problem);
  }

  // A raw request and what the response must start with and contain.
  void run_handshake(const std::string& name, std::uint16_t port, const std::string& request,
                     const std::string& status, std::vector<std::string> contains = {},
                     std::vector<std::string> absent = {}) {
    std::string full = "[handshake] " + name;
    if (!selected(full)) return;
    std::string problem;
    try {
      RawClient client(port);
      auto head = client.handshake(request);
      std::string response = head;
      if (status != "101") {
        // A refusal is complete: the body, then the server closes TCP.
        response += client.read_rest();
        if (response.find("[timeout]") != std::string::npos) problem = "the server did not close the connection";
      }
      // The answer is in the request's HTTP version.
      if (response.rfind("HTTP/1.", 0) != 0 || response.compare(9, status.size(), status) != 0)
        problem = "expected " + status + ", got: " + response;
      for (auto& s : contains)
        if (response.find(s) == std::string::npos) problem += "\n        missing \"" + s + "\" in: " + response;
      for (auto& s : absent)
        if (response.find(s) != std::string::npos) problem += "\n        unexpected \"" + s + "\" in: " + response;
    } catch (const std::exception& e) {
      problem = e.what();
    }
    report(full, problem);
  }
};

void handshake_cases(Runner& r, std::uint16_t plain, std::uint16_t deflate) {
  const std::string key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  const std::string version = "Sec-WebSocket-Version: 13\r\n";
  const std::string upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  auto req = [](const std::string& line, const std::string& headers) {
    return line + "\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
  };
  const std::string get = "GET /echo/ HTTP/1.1";
  r.run_handshake("valid upgrade: 101 with the accept key", plain, req(get, upgrade + key + version), "101",
                  {"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}, {"Sec-WebSocket-Extensions"});
  r.run_handshake("tokens in lists and any case: 101", plain,
                  req(get, "Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n" + key + version), "101");
  r.run_handshake("POST: 400", plain, req("POST /echo/ HTTP/1.1", upgrade + key + version), "400", {"GET"});
  r.run_handshake("HTTP/1.0: 400", plain, req("GET /echo/ HTTP/1.0", upgrade + key + version), "400", {"HTTP/1.1"});
  r.run_handshake("version 8: 426 naming version 13", plain,
                  req(get, upgrade + key + "Sec-WebSocket-Version: 8\r\n"), "426", {"Sec-WebSocket-Version: 13"});
  r.run_handshake("no version: 426", plain, req(get, upgrade + key), "426", {"Sec-WebSocket-Version: 13"});
  r.run_handshake("no key: 400", plain, req(get, upgrade + version), "400", {"Sec-WebSocket-Key"});
  r.run_handshake("key of 15 bytes: 400", plain, req(get, upgrade + "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n" + version),
                  "400", {"Sec-WebSocket-Key"});
  r.run_handshake("key not base64: 400", plain, req(get, upgrade + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n" + version),
                  "400", {"Sec-WebSocket-Key"});
  r.run_handshake("no Upgrade header: 400", plain, req(get, "Connection: Upgrade\r\n" + key + version), "400",
                  {"Upgrade: websocket"});
  r.run_handshake("Upgrade: h2c: 400", plain, req(get, "Upgrade: h2c\r\nConnection: Upgrade\r\n" + key + version), "400",
                  {"Upgrade: websocket"});
  r.run_handshake("no Connection: Upgrade: 400", plain, req(get, "Upgrade: websocket\r\n" + key + version), "400",
                  {"Connection: Upgrade"});
  r.run_handshake("deflate offered, server without it: no extension", plain,
                  req(get, upgrade + key + version + "Sec-WebSocket-Extensions: permessage-deflate\r\n"), "101", {},
                  {"Sec-WebSocket-Extensions"});
  r.run_handshake("deflate offered and enabled: negotiated", deflate,
                  req(get, upgrade + key + version + "Sec-WebSocket-Extensions: permessage-deflate\r\n"), "101",
                  {"Sec-WebSocket-Extensions: permessage-deflate"});
  r.run_handshake("deflate enabled but not offered: no extension", deflate, req(get, upgrade + key + version), "101", {},
                  {"Sec-WebSocket-Extensions"});
  r.run_handshake("unknown extension only: no extension", deflate,
                  req(get, upgrade + key + version + "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"), "101", {},
                  {"Sec-WebSocket-Extensions"});
}

}  // namespace

int main(int argc, char** argv) {
  channels::log().set_level(spdlog::level::warn);
  Runner r;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verbose") == 0 || std::strcmp(argv[i], "-v") == 0)
      r.verbose = true;
    else
      r.filter = argv[i];
  }
  ServerOptions o = TestServer::defaults();
  o.max_message_bytes = max_message;
  TestServer plain(app(), o);
  o.permessage_deflate.enabled = true;
  TestServer deflate(app(), o);

  handshake_cases(r, plain.server.port(), deflate.server.port());
  {
    std::string early;
    for (const auto& f : {text("sent early"), text("and again"), close_frame(1000)}) early += RawClient::encode(f);
    std::vector<Event> echoed{got_text("sent early"), got_text("and again"), got_close(1000), tcp_closed};
    r.run_early("frames before the 101 are echoed after it", plain.server.port(), false, early, "", echoed);
    r.run_early("the same, on a server with permessage-deflate, not offered", deflate.server.port(), false, early,
                "", echoed);
    std::string cut = RawClient::encode(text(std::string(300, 'x'))) + RawClient::encode(close_frame(1000));
    r.run_early("a frame cut short by the end of the early bytes is completed by the next read",
                plain.server.port(), false, cut.substr(0, 100), cut.substr(100),
                {got_text(std::string(300, 'x')), got_close(1000), tcp_closed});
    r.run_early("frames before the 101 on a connection that negotiates compression: 1002", deflate.server.port(),
                true, early, "", {got_close(1002), tcp_closed});
  }
  for (const auto& c : frame_cases()) {
    if (c.modes != Modes::deflate_only) r.run_frames(c, plain.server.port(), false);
    if (c.modes != Modes::plain_only) r.run_frames(c, deflate.server.port(), true);
  }
  std::cout << r.passed << " passed, " << r.failed << " failed\n";
  return r.failed == 0 && r.passed > 0 ? 0 : 1;
}
