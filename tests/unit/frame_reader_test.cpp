// The server's RFC 6455 frame reader (framework/src/frame_reader.hpp), with
// no sockets: masked client frames built here byte by byte, fed whole, one
// byte per read and split at every point; every failure with its close code
// (1002 framing, 1007 UTF-8, 1009 size, found as early as the bytes allow);
// close frames and their codes; Utf8Stream against an independent decoder;
// unmask at every key offset.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "frame_reader.hpp"

using channels::detail::FrameReader;
using channels::detail::unmask;
using channels::detail::Utf8Stream;
using namespace std::string_literals;

namespace {

// ---------------------------------------------------------------- frames --

enum Op : unsigned { Cont = 0, Text = 1, Binary = 2, Close = 8, Ping = 9, Pong = 10 };
enum class Len { Shortest, Len7, Len16, Len64 };  // how the payload length is written

struct FrameOpts {
  bool fin = true;
  unsigned rsv = 0;  // the three RSV bits, 0..7
  std::array<unsigned char, 4> key = {0x37, 0xfa, 0x21, 0x3d};
  Len len = Len::Shortest;
  bool masked = true;
};

// One client-to-server frame: header, masking key, masked payload.
std::string frame(unsigned opcode, std::string_view payload, FrameOpts o = {}) {
  std::string f;
  f += static_cast<char>((o.fin ? 0x80 : 0) | ((o.rsv & 7) << 4) | (opcode & 0x0f));
  const std::uint64_t n = payload.size();
  Len form = o.len;
  if (form == Len::Shortest) form = n < 126 ? Len::Len7 : n <= 0xffff ? Len::Len16 : Len::Len64;
  const char mask_bit = o.masked ? static_cast<char>(0x80) : 0;
  if (form == Len::Len7) {
    f += static_cast<char>(mask_bit | static_cast<char>(n));
  } else if (form == Len::Len16) {
    f += static_cast<char>(mask_bit | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n);
  } else {
    f += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>(n >> (8 * i));
  }
  if (!o.masked) return f + std::string(payload);
  for (unsigned char k : o.key) f += static_cast<char>(k);
  for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ o.key[i % 4]);
  return f;
}

// Only the header of a frame (masking key included) claiming `length`
// bytes, in the shortest form but for lengths only the 64-bit one can hold.
std::string header(unsigned opcode, std::uint64_t length, bool fin = true) {
  std::string f;
  f += static_cast<char>((fin ? 0x80 : 0) | opcode);
  if (length < 126) {
    f += static_cast<char>(0x80 | length);
  } else if (length <= 0xffff) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(length >> 8);
    f += static_cast<char>(length);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i) f += static_cast<char>(length >> (8 * i));
  }
  return f + "\x01\x02\x03\x04"s;
}

std::string close_payload(int code, std::string_view reason = {}) {
  std::string p;
  p += static_cast<char>(code >> 8);
  p += static_cast<char>(code & 0xff);
  return p + std::string(reason);
}

// ------------------------------------------------------------- recording --

struct Event {
  enum Kind { Message, Ping, Pong, Close } kind;
  bool text = false;
  std::string payload;
  int code = 0;

  bool operator==(const Event&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const Event& e) {
    static const char* names[] = {"message", "ping", "pong", "close"};
    os << names[e.kind] << "(";
    if (e.kind == Message) os << (e.text ? "text, " : "binary, ");
    if (e.kind == Close) os << e.code << ", ";
    os << e.payload.size() << " bytes: " << ::testing::PrintToString(e.payload.substr(0, 40)) << ")";
    return os;
  }
};

// The events a test expects.
namespace ev {
Event text(std::string s) { return {Event::Message, true, std::move(s), 0}; }
Event binary(std::string s) { return {Event::Message, false, std::move(s), 0}; }
Event ping(std::string s) { return {Event::Ping, false, std::move(s), 0}; }
Event pong(std::string s) { return {Event::Pong, false, std::move(s), 0}; }
Event close(int code, std::string reason = {}) { return {Event::Close, false, std::move(reason), code}; }
}  // namespace ev

struct Recorder {
  std::vector<Event> events;
  void message(bool is_text, std::string_view p) { events.push_back({Event::Message, is_text, std::string(p), 0}); }
  void ping(std::string_view p) { events.push_back({Event::Ping, false, std::string(p), 0}); }
  void pong(std::string_view p) { events.push_back({Event::Pong, false, std::string(p), 0}); }
  void close(int code, std::string_view reason) { events.push_back({Event::Close, false, std::string(reason), code}); }
};

struct Outcome {
  int code = 0;            // the first failure's close code, 0 if none
  std::size_t failed_at = 0;  // bytes handed over when it failed (all of them if it did not)
  std::vector<Event> events;
  bool done = false;
};

constexpr std::size_t kMax = 1 << 20;

// Feeds `bytes` to one reader in reads of the given sizes (the rest in one
// last read). Each read gets a buffer of its own, exactly its size, so the
// reader cannot lean on bytes it has not been given yet.
Outcome feed(std::string_view bytes, const std::vector<std::size_t>& sizes, std::size_t max = kMax) {
  FrameReader reader(max);
  Recorder rec;
  Outcome out;
  std::size_t pos = 0, i = 0;
  while (pos < bytes.size()) {
    std::size_t n = i < sizes.size() ? std::min(sizes[i++], bytes.size() - pos) : bytes.size() - pos;
    std::vector<char> buf(bytes.begin() + pos, bytes.begin() + pos + n);
    pos += n;
    if (auto f = reader.read(buf.data(), buf.size(), rec)) {
      out.code = f.code;
      EXPECT_STRNE(f.reason, "") << "a failure says why";
      break;
    }
  }
  out.failed_at = pos;
  out.events = std::move(rec.events);
  out.done = reader.done();
  return out;
}

Outcome read_whole(std::string_view bytes, std::size_t max = kMax) { return feed(bytes, {}, max); }

Outcome read_bytewise(std::string_view bytes, std::size_t max = kMax) {
  return feed(bytes, std::vector<std::size_t>(bytes.size(), 1), max);
}

Outcome read_split(std::string_view bytes, std::size_t at, std::size_t max = kMax) {
  return feed(bytes, {at}, max);
}

// The close code a stream fails with, read whole.
int failure(std::string_view bytes, std::size_t max = kMax) { return read_whole(bytes, max).code; }

std::string repeat_pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

using Events = std::vector<Event>;

}  // namespace

// ------------------------------------------------------ messages that work --

TEST(FrameReader, TextFrameWholeAndOneByteAtATime) {
  const std::string bytes = frame(Text, "Hello, world");
  auto whole = read_whole(bytes);
  EXPECT_EQ(whole.code, 0);
  EXPECT_EQ(whole.events, Events{ev::text("Hello, world")});
  EXPECT_FALSE(whole.done);

  auto bytewise = read_bytewise(bytes);
  EXPECT_EQ(bytewise.code, 0);
  EXPECT_EQ(bytewise.events, Events{ev::text("Hello, world")});
}

TEST(FrameReader, EveryLengthEncodingWholeAndOneByteAtATime) {
  // 7-bit up to 125, 16-bit from 126 to 65535, 64-bit from 65536.
  for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 1000u, 65535u, 65536u, 70001u}) {
    SCOPED_TRACE(n);
    const std::string payload = repeat_pattern(n);
    for (unsigned op : {Text, Binary}) {
      const std::string bytes = frame(op, payload);
      const Events want{{Event::Message, op == Text, payload, 0}};
      auto whole = read_whole(bytes);
      EXPECT_EQ(whole.code, 0);
      EXPECT_EQ(whole.events, want);
      auto bytewise = read_bytewise(bytes);
      EXPECT_EQ(bytewise.code, 0);
      EXPECT_EQ(bytewise.events, want);
    }
  }
}

TEST(FrameReader, LengthFormsAreTheOnesExpected) {
  // The helper writes what the tests claim: 2+4, 2+2+4 and 2+8+4 header bytes.
  EXPECT_EQ(frame(Text, repeat_pattern(125)).size(), 125u + 6);
  EXPECT_EQ(frame(Text, repeat_pattern(126)).size(), 126u + 8);
  EXPECT_EQ(frame(Text, repeat_pattern(65536)).size(), 65536u + 14);
  EXPECT_EQ(static_cast<unsigned char>(frame(Text, repeat_pattern(126))[1]), 0x80u | 126);
  EXPECT_EQ(static_cast<unsigned char>(frame(Text, repeat_pattern(65536))[1]), 0x80u | 127);
}

TEST(FrameReader, MaskKeysAreApplied) {
  // A payload long enough for the 8-byte unmasking loop and its tail.
  const std::string payload = "The quick brown fox jumps over the lazy dog";
  for (auto key : {std::array<unsigned char, 4>{0xff, 0x00, 0x80, 0x01}, std::array<unsigned char, 4>{1, 2, 3, 4},
                   std::array<unsigned char, 4>{0xde, 0xad, 0xbe, 0xef}}) {
    const std::string bytes = frame(Text, payload, {.key = key});
    EXPECT_EQ(read_whole(bytes).events, Events{ev::text(payload)});
    EXPECT_EQ(read_bytewise(bytes).events, Events{ev::text(payload)});
  }
}

TEST(FrameReader, SeveralFramesInOneReadInOrder) {
  const std::string bytes = frame(Text, "one") + frame(Binary, "\x00\x01\x02"s) + frame(Ping, "p") +
                            frame(Text, "") + frame(Pong, "q") + frame(Text, repeat_pattern(300)) +
                            frame(Binary, "last");
  const Events want{ev::text("one"), ev::binary("\x00\x01\x02"s), ev::ping("p"), ev::text(""), ev::pong("q"),
                    ev::text(repeat_pattern(300)), ev::binary("last")};
  auto whole = read_whole(bytes);
  EXPECT_EQ(whole.code, 0);
  EXPECT_EQ(whole.events, want);
  EXPECT_EQ(read_bytewise(bytes).events, want);
}

TEST(FrameReader, TwoReadsSplitAtEveryPoint) {
  // A 16-bit-length frame between two short ones: the split lands in every
  // header byte, every key byte and inside and between payloads.
  const std::string bytes = frame(Text, "first") + frame(Text, repeat_pattern(200)) + frame(Binary, "third");
  const Events want{ev::text("first"), ev::text(repeat_pattern(200)), ev::binary("third")};
  for (std::size_t at = 0; at <= bytes.size(); ++at) {
    SCOPED_TRACE(at);
    auto out = read_split(bytes, at);
    ASSERT_EQ(out.code, 0);
    ASSERT_EQ(out.events, want);
  }
}

TEST(FrameReader, RandomReadSizes) {
  const std::string bytes = frame(Text, "a", {.fin = false}) + frame(Ping, "ping!") +
                            frame(Cont, repeat_pattern(1000), {.fin = false}) + frame(Cont, "z") +
                            frame(Binary, repeat_pattern(70000)) + frame(Pong, "") +
                            frame(Close, close_payload(1000, "bye"));
  const Events want{ev::ping("ping!"), ev::text("a" + repeat_pattern(1000) + "z"), ev::binary(repeat_pattern(70000)),
                    ev::pong(""), ev::close(1000, "bye")};
  std::mt19937 rng(6455);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::size_t> sizes;
    std::uniform_int_distribution<std::size_t> d(1, round % 2 ? 20 : 5000);
    for (std::size_t total = 0; total < bytes.size(); total += sizes.back()) sizes.push_back(d(rng));
    auto out = feed(bytes, sizes);
    ASSERT_EQ(out.code, 0) << "round " << round;
    ASSERT_EQ(out.events, want) << "round " << round;
    ASSERT_TRUE(out.done);
  }
}

TEST(FrameReader, FragmentedTextMessage) {
  const std::string bytes =
      frame(Text, "Hel", {.fin = false}) + frame(Cont, "lo, ", {.fin = false}) + frame(Cont, "world");
  EXPECT_EQ(read_whole(bytes).events, Events{ev::text("Hello, world")});
  EXPECT_EQ(read_bytewise(bytes).events, Events{ev::text("Hello, world")});
  for (std::size_t at = 0; at <= bytes.size(); ++at)
    ASSERT_EQ(read_split(bytes, at).events, Events{ev::text("Hello, world")}) << "split at " << at;
}

TEST(FrameReader, FragmentedBinaryAndEmptyFragments) {
  const std::string bytes = frame(Binary, "", {.fin = false}) + frame(Cont, "\xff\x00"s, {.fin = false}) +
                            frame(Cont, "", {.fin = false}) + frame(Cont, "\xfe") +
                            frame(Text, "", {.fin = false}) + frame(Cont, "");
  const Events want{ev::binary("\xff\x00\xfe"s), ev::text("")};
  EXPECT_EQ(read_whole(bytes).events, want);
  EXPECT_EQ(read_bytewise(bytes).events, want);
}

TEST(FrameReader, ControlFramesBetweenFragments) {
  const std::string bytes = frame(Text, "Hel", {.fin = false}) + frame(Ping, "are you there") +
                            frame(Cont, "lo, ", {.fin = false}) + frame(Pong, "yes") + frame(Cont, "world");
  const Events want{ev::ping("are you there"), ev::pong("yes"), ev::text("Hello, world")};
  EXPECT_EQ(read_whole(bytes).events, want);
  EXPECT_EQ(read_bytewise(bytes).events, want);
  for (std::size_t at = 0; at <= bytes.size(); ++at)
    ASSERT_EQ(read_split(bytes, at).events, want) << "split at " << at;
}

TEST(FrameReader, PingAndPongPayloads) {
  const std::string longest = repeat_pattern(125);
  const std::string bytes = frame(Ping, "") + frame(Ping, longest) + frame(Pong, "\x00\xff"s);
  const Events want{ev::ping(""), ev::ping(longest), ev::pong("\x00\xff"s)};
  EXPECT_EQ(read_whole(bytes).events, want);
  EXPECT_EQ(read_bytewise(bytes).events, want);
}

TEST(FrameReader, BinaryIsNotCheckedAsUtf8) {
  const std::string junk = "\xc0\xaf\xed\xa0\x80\xff\xfe\xe2"s;
  EXPECT_EQ(read_whole(frame(Binary, junk)).events, Events{ev::binary(junk)});
  EXPECT_EQ(read_whole(frame(Binary, "\xe2", {.fin = false}) + frame(Cont, "\xff")).events,
            Events{ev::binary("\xe2\xff")});
}

TEST(FrameReader, MessageThatArrivedWholeIsSeenInTheReadBuffer) {
  // "a message that arrived whole in one read is seen where it lies (no copy)"
  std::string bytes = frame(Text, "in place");
  FrameReader reader(kMax);
  struct {
    std::string_view seen;
    void message(bool, std::string_view p) { seen = p; }
    void ping(std::string_view) {}
    void pong(std::string_view) {}
    void close(int, std::string_view) {}
  } v;
  ASSERT_FALSE(reader.read(bytes.data(), bytes.size(), v));
  EXPECT_EQ(v.seen, "in place");
  EXPECT_EQ(v.seen.data(), bytes.data() + 6);
  EXPECT_EQ(bytes.substr(6), "in place") << "unmasked in place";
}

TEST(FrameReader, MessageOfExactlyTheMaximumSize) {
  EXPECT_EQ(read_whole(frame(Text, repeat_pattern(100)), 100).events, Events{ev::text(repeat_pattern(100))});
  const std::string fragmented = frame(Text, repeat_pattern(60), {.fin = false}) + frame(Ping, "x") +
                                 frame(Cont, repeat_pattern(40));
  auto out = read_whole(fragmented, 100);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.events, (Events{ev::ping("x"), ev::text(repeat_pattern(60) + repeat_pattern(40))}));
}

// -------------------------------------------------------------- failures --

TEST(FrameReader, UnmaskedFrameIs1002) {
  EXPECT_EQ(failure(frame(Text, "hi", {.masked = false})), 1002);
  EXPECT_EQ(failure(frame(Ping, "", {.masked = false})), 1002);
  EXPECT_EQ(failure(frame(Text, "ok") + frame(Text, "hi", {.masked = false})), 1002);
  // Known from the second byte already.
  EXPECT_EQ(failure(frame(Text, "hi", {.masked = false}).substr(0, 2)), 1002);
  EXPECT_EQ(read_bytewise(frame(Text, "hi", {.masked = false})).failed_at, 2u);
}

TEST(FrameReader, ReservedBitsAre1002) {
  for (unsigned rsv = 1; rsv <= 7; ++rsv) {
    SCOPED_TRACE(rsv);
    EXPECT_EQ(failure(frame(Text, "hi", {.rsv = rsv})), 1002);
    EXPECT_EQ(failure(frame(Ping, "", {.rsv = rsv})), 1002);
    EXPECT_EQ(failure(frame(Text, "a", {.fin = false}) + frame(Cont, "b", {.rsv = rsv})), 1002);
  }
}

TEST(FrameReader, ReservedOpcodesAre1002) {
  for (unsigned op : {3u, 4u, 5u, 6u, 7u, 11u, 12u, 13u, 14u, 15u}) {
    SCOPED_TRACE(op);
    auto out = read_whole(frame(op, "") + frame(Text, "never"));
    EXPECT_EQ(out.code, 1002);
    EXPECT_TRUE(out.events.empty());
    EXPECT_EQ(failure(frame(op, "x", {.fin = false})), 1002);
    EXPECT_EQ(failure(frame(Text, "a", {.fin = false}) + frame(op, "x")), 1002);
    EXPECT_EQ(read_bytewise(frame(op, "payload")).code, 1002);
  }
}

TEST(FrameReader, FragmentedControlFrameIs1002) {
  for (unsigned op : {Close, Ping, Pong}) {
    SCOPED_TRACE(op);
    EXPECT_EQ(failure(frame(op, "", {.fin = false})), 1002);
    EXPECT_EQ(failure(frame(Text, "a", {.fin = false}) + frame(op, "x", {.fin = false})), 1002);
  }
}

TEST(FrameReader, ControlPayloadOver125Is1002) {
  for (unsigned op : {Close, Ping, Pong}) {
    SCOPED_TRACE(op);
    std::string payload = repeat_pattern(126);
    if (op == Close) payload = close_payload(1000, repeat_pattern(124));
    EXPECT_EQ(failure(frame(op, payload)), 1002);
    // From the header alone.
    EXPECT_EQ(failure(frame(op, payload).substr(0, 8)), 1002);
  }
}

TEST(FrameReader, ContinuationWithoutAMessageIs1002) {
  EXPECT_EQ(failure(frame(Cont, "x")), 1002);
  EXPECT_EQ(failure(frame(Cont, "x", {.fin = false})), 1002);
  auto out = read_whole(frame(Text, "done") + frame(Cont, "more"));
  EXPECT_EQ(out.code, 1002);
  EXPECT_EQ(out.events, Events{ev::text("done")});
  EXPECT_EQ(failure(frame(Text, "a", {.fin = false}) + frame(Cont, "b") + frame(Cont, "c")), 1002);
}

TEST(FrameReader, NewMessageInsideAFragmentedOneIs1002) {
  for (unsigned first : {Text, Binary})
    for (unsigned second : {Text, Binary}) {
      SCOPED_TRACE(std::to_string(first) + "/" + std::to_string(second));
      EXPECT_EQ(failure(frame(first, "a", {.fin = false}) + frame(second, "b")), 1002);
      EXPECT_EQ(failure(frame(first, "a", {.fin = false}) + frame(Cont, "b", {.fin = false}) +
                        frame(second, "c", {.fin = false})),
                1002);
    }
}

TEST(FrameReader, NonMinimalLengthIs1002) {
  for (std::size_t n : {0u, 1u, 125u}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(failure(frame(Text, repeat_pattern(n), {.len = Len::Len16})), 1002);
    EXPECT_EQ(failure(frame(Text, repeat_pattern(n), {.len = Len::Len64})), 1002);
    EXPECT_EQ(failure(frame(Ping, repeat_pattern(n), {.len = Len::Len16})), 1002);
  }
  for (std::size_t n : {126u, 1000u, 65535u}) {
    SCOPED_TRACE(n);
    EXPECT_EQ(failure(frame(Text, repeat_pattern(n), {.len = Len::Len64})), 1002);
    EXPECT_EQ(read_bytewise(frame(Binary, repeat_pattern(n), {.len = Len::Len64})).code, 1002);
  }
  // The shortest forms themselves are fine at their edges.
  EXPECT_EQ(failure(frame(Text, repeat_pattern(126), {.len = Len::Len16})), 0);
  EXPECT_EQ(failure(frame(Text, repeat_pattern(65535), {.len = Len::Len16})), 0);
  EXPECT_EQ(failure(frame(Text, repeat_pattern(65536), {.len = Len::Len64})), 0);
}

TEST(FrameReader, LengthWithTheTopBitSetIs1002) {
  EXPECT_EQ(failure(header(Binary, std::uint64_t{1} << 63)), 1002);
  EXPECT_EQ(failure(header(Binary, ~std::uint64_t{0})), 1002);
}

TEST(FrameReader, MessageOverTheMaximumIs1009) {
  EXPECT_EQ(failure(frame(Text, repeat_pattern(101)), 100), 1009);
  EXPECT_EQ(failure(frame(Binary, repeat_pattern(101)), 100), 1009);
  EXPECT_EQ(failure(frame(Binary, repeat_pattern(70000)), 65536), 1009);
  // A ping is not a message: the limit does not apply to it.
  EXPECT_EQ(failure(frame(Ping, repeat_pattern(100)), 10), 0);
}

TEST(FrameReader, MessageOverTheMaximumFailsOnTheHeader) {
  // Only the header is sent: the payload it announces never comes.
  EXPECT_EQ(failure(header(Text, 101), 100), 1009);
  EXPECT_EQ(failure(header(Binary, 1000), 999), 1009);
  EXPECT_EQ(failure(header(Binary, 70000), 65536), 1009);
  EXPECT_EQ(failure(header(Binary, std::uint64_t{1} << 40), 1 << 20), 1009);
  EXPECT_EQ(failure(frame(Text, repeat_pattern(101)).substr(0, 8), 100), 1009);
  auto bytewise = read_bytewise(frame(Text, repeat_pattern(5000)), 4000);
  EXPECT_EQ(bytewise.code, 1009);
  EXPECT_EQ(bytewise.failed_at, 8u) << "failed once the 16-bit header was complete";
}

TEST(FrameReader, FragmentedMessageOverTheMaximumIs1009) {
  const std::string first = frame(Text, repeat_pattern(60), {.fin = false});
  EXPECT_EQ(failure(first + frame(Cont, repeat_pattern(41)), 100), 1009);
  EXPECT_EQ(failure(first + frame(Cont, repeat_pattern(30), {.fin = false}) + frame(Ping, "") +
                        frame(Cont, repeat_pattern(11)),
                    100),
            1009);
  // As soon as the continuation's header says so.
  auto out = read_whole(first + frame(Cont, repeat_pattern(41)).substr(0, 6), 100);
  EXPECT_EQ(out.code, 1009);
  EXPECT_TRUE(out.events.empty());
  auto bytewise = read_bytewise(first + frame(Cont, repeat_pattern(41)), 100);
  EXPECT_EQ(bytewise.code, 1009);
  EXPECT_EQ(bytewise.failed_at, first.size() + 6);
}

TEST(FrameReader, InvalidUtf8Is1007) {
  for (std::string bad : {"\xc0\xaf"s, "\xed\xa0\x80"s, "\xf4\x90\x80\x80"s, "\x80"s, "\xff"s, "ab\xe2\x28\xa1"s,
                          "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"s}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    EXPECT_EQ(failure(frame(Text, bad)), 1007);
    EXPECT_EQ(read_bytewise(frame(Text, bad)).code, 1007);
    EXPECT_EQ(failure(frame(Text, "ok", {.fin = false}) + frame(Cont, bad)), 1007);
  }
}

TEST(FrameReader, InvalidUtf8InTheFirstFragmentFailsBeforeTheMessageEnds) {
  // Only the first, bad fragment is sent.
  auto out = read_whole(frame(Text, "hello \xc0\xaf world", {.fin = false}));
  EXPECT_EQ(out.code, 1007);
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(out.done);
  // And inside one frame, before its payload is all there: fails on the bad byte.
  const std::string one = frame(Text, "0123456789\xff" + repeat_pattern(100));
  auto bytewise = read_bytewise(one);
  EXPECT_EQ(bytewise.code, 1007);
  EXPECT_EQ(bytewise.failed_at, 6u + 11u);
}

TEST(FrameReader, TextEndingInsideAUtf8SequenceIs1007) {
  EXPECT_EQ(failure(frame(Text, "a\xe2\x82")), 1007);
  EXPECT_EQ(failure(frame(Text, "\xf0\x9f\x98")), 1007);
  EXPECT_EQ(failure(frame(Text, "\xc3")), 1007);
  EXPECT_EQ(read_bytewise(frame(Text, "a\xe2\x82")).code, 1007);
  EXPECT_EQ(failure(frame(Text, "a", {.fin = false}) + frame(Cont, "\xe2\x82")), 1007);
  // But a fragment may end inside one (below).
  EXPECT_EQ(failure(frame(Text, "a\xe2\x82", {.fin = false})), 0);
}

TEST(FrameReader, Utf8SequenceSplitAcrossFragments) {
  // € is E2 82 AC, 😀 is F0 9F 98 80.
  const std::string bytes = frame(Text, "a\xe2", {.fin = false}) + frame(Cont, "\x82", {.fin = false}) +
                            frame(Ping, "") + frame(Cont, "\xac\xf0\x9f", {.fin = false}) +
                            frame(Cont, "\x98\x80!");
  const Events want{ev::ping(""), ev::text("a\xe2\x82\xac\xf0\x9f\x98\x80!")};
  auto out = read_whole(bytes);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.events, want);
  EXPECT_EQ(read_bytewise(bytes).events, want);
}

TEST(FrameReader, Utf8StateDoesNotLeakIntoTheNextMessage) {
  // A binary message ending in a lead byte, then a text message.
  EXPECT_EQ(read_whole(frame(Binary, "\xe2") + frame(Text, "ok")).events, (Events{ev::binary("\xe2"), ev::text("ok")}));
  // A text message after one with multi-byte characters.
  EXPECT_EQ(read_whole(frame(Text, "\xe2\x82\xac") + frame(Text, "\x41")).events,
            (Events{ev::text("\xe2\x82\xac"), ev::text("A")}));
}

TEST(FrameReader, NothingIsReadAfterAFailure) {
  FrameReader reader(kMax);
  Recorder rec;
  std::string bad = frame(Cont, "x");
  EXPECT_EQ(reader.read(bad.data(), bad.size(), rec).code, 1002);
  EXPECT_TRUE(reader.done());
  std::string good = frame(Text, "late");
  EXPECT_FALSE(reader.read(good.data(), good.size(), rec));
  EXPECT_TRUE(rec.events.empty());
}

// ---------------------------------------------------------------- close --

TEST(FrameReader, EmptyCloseIs1005) {
  const std::string bytes = frame(Close, "");
  auto out = read_whole(bytes);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.events, Events{ev::close(1005)});
  EXPECT_TRUE(out.done);
  EXPECT_EQ(read_bytewise(bytes).events, Events{ev::close(1005)});
}

TEST(FrameReader, CloseWithCodeAndReason) {
  const std::string bytes = frame(Close, close_payload(1001, "going away \xe2\x82\xac"));
  const Events want{ev::close(1001, "going away \xe2\x82\xac")};
  auto out = read_whole(bytes);
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.events, want);
  EXPECT_TRUE(out.done);
  EXPECT_EQ(read_bytewise(bytes).events, want);
  EXPECT_EQ(read_whole(frame(Close, close_payload(4321))).events, Events{ev::close(4321)});
  const std::string longest = repeat_pattern(123);
  EXPECT_EQ(read_whole(frame(Close, close_payload(1000, longest))).events, Events{ev::close(1000, longest)});
}

TEST(FrameReader, OneByteCloseIs1002) {
  auto out = read_whole(frame(Close, "\x03"));
  EXPECT_EQ(out.code, 1002);
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(out.done);
}

TEST(FrameReader, InvalidCloseCodesAre1002) {
  for (int code : {0, 1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
    SCOPED_TRACE(code);
    auto out = read_whole(frame(Close, close_payload(code, "r")));
    EXPECT_EQ(out.code, 1002);
    EXPECT_TRUE(out.events.empty());
    EXPECT_EQ(failure(frame(Close, close_payload(code))), 1002);
  }
}

TEST(FrameReader, ValidCloseCodesAreReported) {
  for (int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000, 4999}) {
    SCOPED_TRACE(code);
    auto out = read_whole(frame(Close, close_payload(code, "why")));
    EXPECT_EQ(out.code, 0);
    EXPECT_EQ(out.events, Events{ev::close(code, "why")});
  }
}

TEST(FrameReader, InvalidUtf8InTheCloseReasonIs1002) {
  for (std::string bad : {"\xff"s, "ok\xc0\xaf"s, "\xed\xa0\x80"s, "cut \xe2\x82"s}) {
    SCOPED_TRACE(::testing::PrintToString(bad));
    auto out = read_whole(frame(Close, close_payload(1000, bad)));
    EXPECT_EQ(out.code, 1002);
    EXPECT_TRUE(out.events.empty());
  }
}

TEST(FrameReader, BytesAfterACloseAreIgnored) {
  // A message, a close, then more frames, a broken one and junk.
  const std::string bytes = frame(Text, "before") + frame(Close, close_payload(1000, "bye")) + frame(Text, "after") +
                            frame(Cont, "invalid") + frame(Text, "x", {.masked = false}) + "\xff\xff\xff"s;
  const Events want{ev::text("before"), ev::close(1000, "bye")};
  for (std::size_t at = 0; at <= bytes.size(); ++at) {
    auto out = read_split(bytes, at);
    ASSERT_EQ(out.code, 0) << "split at " << at;
    ASSERT_EQ(out.events, want) << "split at " << at;
    ASSERT_TRUE(out.done);
  }
  auto bytewise = read_bytewise(bytes);
  EXPECT_EQ(bytewise.code, 0);
  EXPECT_EQ(bytewise.events, want);
  EXPECT_TRUE(bytewise.done);
}

TEST(FrameReader, CloseInsideAFragmentedMessage) {
  // Control frames may come between fragments; the unfinished message is dropped.
  auto out = read_whole(frame(Text, "part", {.fin = false}) + frame(Close, close_payload(1001)) + frame(Cont, "rest"));
  EXPECT_EQ(out.code, 0);
  EXPECT_EQ(out.events, Events{ev::close(1001)});
  EXPECT_TRUE(out.done);
}

TEST(FrameReader, NotDoneUntilTheCloseFrameIsWhole) {
  FrameReader reader(kMax);
  Recorder rec;
  std::string bytes = frame(Close, close_payload(1000, "bye"));
  ASSERT_FALSE(reader.read(bytes.data(), bytes.size() - 1, rec));
  EXPECT_FALSE(reader.done());
  EXPECT_TRUE(rec.events.empty());
  ASSERT_FALSE(reader.read(bytes.data() + bytes.size() - 1, 1, rec));
  EXPECT_TRUE(reader.done());
  EXPECT_EQ(rec.events, Events{ev::close(1000, "bye")});
  // Later reads see nothing.
  std::string more = frame(Text, "late");
  EXPECT_FALSE(reader.read(more.data(), more.size(), rec));
  EXPECT_EQ(rec.events.size(), 1u);
}

// ----------------------------------------------------------- Utf8Stream --

namespace {

struct Utf8Verdict {
  bool prefix_ok;  // the bytes can start valid UTF-8
  bool complete;   // and no sequence is left unfinished
  bool operator==(const Utf8Verdict&) const = default;
};

// An independent decoder: sequence length from the lead byte's bit pattern,
// the code point from its bits, then RFC 3629's rules on the value. An
// unfinished sequence is fine if some ending of it would be a valid value.
Utf8Verdict reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned c = static_cast<unsigned char>(s[i]);
    int len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07;
    } else {
      return {false, false};
    }
    int k = 1;
    for (; k < len && i + k < s.size(); ++k) {
      const unsigned d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return {false, false};
      cp = (cp << 6) | (d & 0x3f);
    }
    const int missing = len - k;
    std::uint32_t lo = cp << (6 * missing);
    std::uint32_t hi = lo | ((std::uint32_t{1} << (6 * missing)) - 1);
    lo = std::max<std::uint32_t>(lo, len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000);
    hi = std::min<std::uint32_t>(hi, len == 2 ? 0x7ff : len == 3 ? 0xffff : 0x10ffff);
    if (lo > hi) return {false, false};
    if (lo >= 0xd800 && hi <= 0xdfff) return {false, false};
    if (missing) return {true, false};
    i += len;
  }
  return {true, true};
}

Utf8Verdict stream_whole(std::string_view s) {
  Utf8Stream u;
  bool ok = u.feed(reinterpret_cast<const unsigned char*>(s.data()), s.size());
  return {ok, ok && u.complete()};
}

Utf8Verdict stream_bytewise(std::string_view s) {
  Utf8Stream u;
  for (char c : s) {
    auto b = static_cast<unsigned char>(c);
    if (!u.feed(&b, 1)) return {false, false};
  }
  return {true, u.complete()};
}

}  // namespace

TEST(Utf8Stream, RejectsOverlongForms) {
  for (std::string s : {"\xc0\x80"s, "\xc1\xbf"s, "\xe0\x80\x80"s, "\xe0\x9f\xbf"s, "\xf0\x80\x80\x80"s,
                        "\xf0\x8f\xbf\xbf"s, "\xc0\xaf"s, "\xe0\x80\xaf"s, "\xf0\x80\x80\xaf"s}) {
    SCOPED_TRACE(::testing::PrintToString(s));
    EXPECT_FALSE(stream_whole(s).prefix_ok);
    EXPECT_FALSE(stream_bytewise(s).prefix_ok);
  }
}

TEST(Utf8Stream, RejectsSurrogates) {
  for (std::string s : {"\xed\xa0\x80"s, "\xed\xad\xbf"s, "\xed\xae\x80"s, "\xed\xbf\xbf"s,
                        "\xed\xa0\x80\xed\xb0\x80"s}) {
    SCOPED_TRACE(::testing::PrintToString(s));
    EXPECT_FALSE(stream_whole(s).prefix_ok);
    EXPECT_FALSE(stream_bytewise(s).prefix_ok);
  }
}

TEST(Utf8Stream, RejectsAboveU10FFFF) {
  for (std::string s : {"\xf4\x90\x80\x80"s, "\xf4\xbf\xbf\xbf"s, "\xf5\x80\x80\x80"s, "\xf7\xbf\xbf\xbf"s,
                        "\xf8\x88\x80\x80\x80"s, "\xfc\x84\x80\x80\x80\x80"s}) {
    SCOPED_TRACE(::testing::PrintToString(s));
    EXPECT_FALSE(stream_whole(s).prefix_ok);
    EXPECT_FALSE(stream_bytewise(s).prefix_ok);
  }
}

TEST(Utf8Stream, RejectsLoneAndMissingContinuationBytes) {
  for (std::string s : {"\x80"s, "\xbf"s, "a\x80"s, "\xe2\x82\xac\x80"s, "\xc3("s, "\xe2\x82("s,
                        "\xf0\x9f\x98("s, "\xfe"s, "\xff"s}) {
    SCOPED_TRACE(::testing::PrintToString(s));
    EXPECT_FALSE(stream_whole(s).prefix_ok);
    EXPECT_FALSE(stream_bytewise(s).prefix_ok);
  }
}

TEST(Utf8Stream, FailsAsSoonAsTheBadByteIsSeen) {
  Utf8Stream u;
  auto feed = [&](std::string_view s) { return u.feed(reinterpret_cast<const unsigned char*>(s.data()), s.size()); };
  EXPECT_TRUE(feed("\xed"));   // could still be U+D000..U+D7FF
  EXPECT_FALSE(feed("\xa0"));  // now a surrogate, before its last byte
  Utf8Stream v;
  const unsigned char f4[] = {0xf4};
  const unsigned char x90[] = {0x90};
  EXPECT_TRUE(v.feed(f4, 1));
  EXPECT_FALSE(v.feed(x90, 1));
}

TEST(Utf8Stream, AcceptsValidTextByteByByte) {
  // Each sequence with the code points at the edges of its length.
  const std::string s = "plain ascii, then "
                        "\xc2\x80 \xc3\xa9 \xdf\xbf "                      // U+0080 é U+07FF
                        "\xe0\xa0\x80 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf "  // U+0800 € U+D7FF U+E000 U+FFFF
                        "\xf0\x90\x80\x80 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"                 // U+10000 😀 U+10FFFF
                        " \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";                             // 日本語
  Utf8Stream u;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto b = static_cast<unsigned char>(s[i]);
    ASSERT_TRUE(u.feed(&b, 1)) << "byte " << i;
    // Complete exactly when the next byte does not continue a sequence.
    const bool boundary = i + 1 == s.size() || (static_cast<unsigned char>(s[i + 1]) & 0xc0) != 0x80;
    ASSERT_EQ(u.complete(), boundary) << "after byte " << i;
  }
  EXPECT_TRUE(u.complete());
  EXPECT_EQ(stream_whole(s), (Utf8Verdict{true, true}));
}

TEST(Utf8Stream, IncompleteInTheMiddleOfASequence) {
  for (std::string s : {"\xc3"s, "\xe2"s, "\xe2\x82"s, "\xf0"s, "\xf0\x9f"s, "\xf0\x9f\x98"s, "abcdefghij\xe2\x82"s}) {
    SCOPED_TRACE(::testing::PrintToString(s));
    EXPECT_EQ(stream_whole(s), (Utf8Verdict{true, false}));
    EXPECT_EQ(stream_bytewise(s), (Utf8Verdict{true, false}));
  }
}

TEST(Utf8Stream, ResetForgetsAnUnfinishedSequence) {
  Utf8Stream u;
  const unsigned char lead[] = {0xe2, 0x82};
  ASSERT_TRUE(u.feed(lead, 2));
  EXPECT_FALSE(u.complete());
  u.reset();
  EXPECT_TRUE(u.complete());
  const unsigned char a[] = {'a'};
  EXPECT_TRUE(u.feed(a, 1));
  EXPECT_TRUE(u.complete());
}

TEST(Utf8Stream, AgreesWithAReferenceDecoderOnAllShortStrings) {
  // Every string of up to two bytes, alone and inside ASCII runs long enough
  // for the eight-bytes-at-a-time path; every three-byte string from a
  // non-ASCII lead; four-byte strings over their interesting bytes.
  std::string s;
  auto check = [&](std::string_view str) {
    const Utf8Verdict want = reference_utf8(str);
    if (stream_whole(str) != want || stream_bytewise(str) != want) {
      ADD_FAILURE() << "disagrees on " << ::testing::PrintToString(std::string(str)) << ": reference says "
                    << want.prefix_ok << "/" << want.complete;
      return false;
    }
    return true;
  };
  for (unsigned a = 0; a < 256; ++a) {
    if (!check(std::string(1, static_cast<char>(a)))) return;
    for (unsigned b = 0; b < 256; ++b) {
      s = {static_cast<char>(a), static_cast<char>(b)};
      if (!check(s)) return;
      for (std::string_view pad : {"0123456", "01234567", "012345678", "0123456789abcdef"}) {
        if (!check(std::string(pad) + s) || !check(std::string(pad) + s + std::string(pad))) return;
      }
    }
  }
  s.assign(3, '\0');
  for (unsigned a = 0x80; a < 256; ++a)
    for (unsigned b = 0; b < 256; ++b)
      for (unsigned c = 0; c < 256; ++c) {
        s[0] = static_cast<char>(a), s[1] = static_cast<char>(b), s[2] = static_cast<char>(c);
        const Utf8Verdict want = reference_utf8(s);
        if (stream_whole(s) != want) {
          ADD_FAILURE() << "disagrees on " << ::testing::PrintToString(s);
          return;
        }
      }
  const unsigned tails[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xe2, 0xf0, 0xff};
  s.assign(4, '\0');
  for (unsigned a = 0xf0; a < 0xf8; ++a)
    for (unsigned b = 0; b < 256; ++b)
      for (unsigned c : tails)
        for (unsigned d : tails) {
          s[0] = static_cast<char>(a), s[1] = static_cast<char>(b), s[2] = static_cast<char>(c),
          s[3] = static_cast<char>(d);
          if (!check(s)) return;
        }
}

// The scope decodes paths a sequence at a time (utf8_sequence, to replace
// what is not UTF-8); is_utf8 is the stream. Both must draw the same line.
TEST(Utf8Stream, SequenceByteRulesAgreeWithTheReferenceOnShortStrings) {
  auto by_sequences = [](std::string_view str) {
    for (std::size_t i = 0, n; i < str.size(); i += n)
      if ((n = channels::detail::utf8_sequence(str.substr(i))) == 0) return false;
    return true;
  };
  std::string s;
  for (unsigned a = 0; a < 256; ++a)
    for (unsigned b = 0; b < 256; ++b)
      for (unsigned c : {0x00u, 0x41u, 0x80u, 0x8fu, 0x90u, 0x9fu, 0xa0u, 0xbfu, 0xc0u, 0xffu}) {
        s = {static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)};
        const bool want = reference_utf8(s).complete;
        if (by_sequences(s) != want || channels::detail::is_utf8(s) != want) {
          ADD_FAILURE() << "disagrees on " << ::testing::PrintToString(s);
          return;
        }
      }
}

TEST(Utf8Stream, AcceptsEveryCodePointAndNoSurrogate) {
  auto encode = [](std::uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xc0 | cp >> 6);
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xe0 | cp >> 12);
      s += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      s += static_cast<char>(0xf0 | cp >> 18);
      s += static_cast<char>(0x80 | (cp >> 12 & 0x3f));
      s += static_cast<char>(0x80 | (cp >> 6 & 0x3f));
      s += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return s;
  };
  for (std::uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
    const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    const Utf8Verdict got = stream_whole(encode(cp));
    if (got != Utf8Verdict{!surrogate, !surrogate}) {
      ADD_FAILURE() << "U+" << std::hex << cp;
      return;
    }
  }
}

// ---------------------------------------------------------------- unmask --

TEST(Unmask, EqualsBytewiseXorAtEveryOffset) {
  const unsigned char key[4] = {0x12, 0xab, 0xff, 0x80};
  for (std::size_t offset : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 9u, 1001u}) {
    for (std::size_t n = 0; n <= 40; ++n) {
      std::string data(n + 2, '\0');
      for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 37 + n);
      std::string want = data;
      for (std::size_t i = 0; i < n; ++i) want[1 + i] = static_cast<char>(want[1 + i] ^ key[(offset + i) % 4]);
      // At 1 past the start: unaligned, and the guard bytes either side stay.
      unmask(data.data() + 1, n, key, offset);
      ASSERT_EQ(data, want) << "offset " << offset << ", length " << n;
    }
  }
}

TEST(Unmask, TwiceIsTheIdentityAndPiecesEqualTheWhole) {
  const unsigned char key[4] = {0x01, 0x80, 0x7f, 0xfe};
  const std::string original = repeat_pattern(100);
  std::string whole = original;
  unmask(whole.data(), whole.size(), key, 0);
  EXPECT_NE(whole, original);
  for (std::size_t cut = 0; cut <= original.size(); ++cut) {
    std::string pieces = original;
    unmask(pieces.data(), cut, key, 0);
    unmask(pieces.data() + cut, pieces.size() - cut, key, cut);
    ASSERT_EQ(pieces, whole) << "cut at " << cut;
  }
  unmask(whole.data(), whole.size(), key, 0);
  EXPECT_EQ(whole, original);
}
