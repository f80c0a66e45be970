// Limits and abuse, over real sockets: connection caps (503 and 429), a
// slowloris client, idle peers and keep-alive pings, and clients that never
// read sitting on a busy room, and what a large message leaves behind.

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <tuple>

#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>

#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::TestServer;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::atomic<int> connects{0};
std::mutex codes_mutex;
std::vector<int> codes;

void reset_record() {
  connects = 0;
  std::lock_guard l(codes_mutex);
  codes.clear();
}
std::vector<int> disconnect_codes() {
  std::lock_guard l(codes_mutex);
  return codes;
}

struct Echo : WebsocketConsumer {
  void on_connect() override {
    ++connects;
    accept();
  }
  void on_receive(std::string_view t) override { send(t); }
  void on_disconnect(int code) override {
    std::lock_guard l(codes_mutex);
    codes.push_back(code);
  }
};

// Every member of "room" gets every "room.message" (a copy each, as a chat does).
struct Room : WebsocketConsumer {
  Room() { handle("room.message", &Room::room_message); }
  void on_connect() override {
    group_add("room");
    ++connects;
    accept();
  }
  void room_message(const Message& m) { send(m["text"].get<std::string>()); }
  void on_disconnect(int code) override {
    group_discard("room");
    std::lock_guard l(codes_mutex);
    codes.push_back(code);
  }
};

ApplicationPtr app() {
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{
                        path("echo/", as_app<Echo>()),
                        path("room/", as_app<Room>()),
                    })},
  });
}

const std::string upgrade_request =
    "GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

std::string upgrade_to(std::string_view path) {
  std::string r = upgrade_request;
  r.replace(4, 6, path);
  return r;
}

// A raw TCP client, optionally from another loopback address.
struct RawClient {
  asio::io_context ioc;
  tcp::socket socket{ioc};

  RawClient(std::uint16_t port, const char* from = nullptr, int receive_buffer = 0) {
    socket.open(tcp::v4());
    if (receive_buffer) socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    if (from) socket.bind({asio::ip::make_address(from), 0});
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
  }

  void write(std::string_view s) { asio::write(socket, asio::buffer(s)); }

  // The response head (through the blank line), or what came before the close.
  std::string read_head() {
    asio::streambuf buf;
    boost::system::error_code ec;
    asio::read_until(socket, buf, "\r\n\r\n", ec);
    std::string all(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
    auto end = all.find("\r\n\r\n");
    rest = end == std::string::npos ? "" : all.substr(end + 4);
    return end == std::string::npos ? all : all.substr(0, end + 4);
  }

  // Everything until the server closes (bounded).
  std::string read_all() {
    std::string out = rest;
    char buf[4096];
    boost::system::error_code ec;
    for (int i = 0; i < 10000; ++i) {
      auto n = socket.read_some(asio::buffer(buf), ec);
      if (ec) break;
      out.append(buf, n);
    }
    return out;
  }

  // Waits up to `timeout` for bytes or a close; returns what came, and sets
  // `closed` when the server ended the connection.
  std::string poll_read(std::chrono::milliseconds timeout, bool& closed) {
    pollfd p{socket.native_handle(), POLLIN, 0};
    closed = false;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    char buf[4096];
    boost::system::error_code ec;
    auto n = socket.read_some(asio::buffer(buf), ec);
    if (ec) closed = true;
    return std::string(buf, ec ? 0 : n);
  }

  std::string rest;
};

std::size_t rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  return 0;
}

class Limits : public ::testing::Test {
 protected:
  void SetUp() override { reset_record(); }
};

}  // namespace

TEST_F(Limits, BeyondMaxConnectionsTheHandshakeGets503WithRetryAfterAndIsCounted) {
  auto o = TestServer::defaults();
  o.max_connections = 3;
  TestServer ts(app(), o);
  std::vector<WebsocketClient> clients(3);
  for (auto& c : clients) ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);

  RawClient extra(ts.server.port());
  extra.write(upgrade_request);
  auto head = extra.read_head();
  EXPECT_EQ(head.rfind("HTTP/1.1 503", 0), 0u) << head;
  EXPECT_NE(head.find("Retry-After: 5\r\n"), std::string::npos) << head;
  auto body = extra.read_all();
  EXPECT_NE(body.find("limit of 3 connections"), std::string::npos) << body;
  EXPECT_EQ(connects, 3);  // no consumer ran for it
  EXPECT_EQ(ts.server.stats().connections_refused, 1u);

  // Plain HTTP is counted against the same limit.
  auto res = testing_support::http_get(ts.server.port(), "GET /x HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(res.rfind("HTTP/1.1 503", 0), 0u) << res;
  EXPECT_EQ(ts.server.stats().connections_refused, 2u);

  // Room again once a client leaves.
  clients[0].close();
  ASSERT_TRUE(eventually([&] { return disconnect_codes().size() == 1; }));
  WebsocketClient again;
  EXPECT_TRUE(eventually([&] { return again.connect(ts.url("/echo/")).accepted; }));
}

TEST_F(Limits, BeyondMaxConnectionsPerIpThatAddressGets429AndOthersStillConnect) {
  auto o = TestServer::defaults();
  o.max_connections_per_ip = 2;
  TestServer ts(app(), o);
  std::vector<WebsocketClient> clients(2);
  for (auto& c : clients) ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);

  RawClient third(ts.server.port(), "127.0.0.1");
  third.write(upgrade_request);
  auto head = third.read_head();
  EXPECT_EQ(head.rfind("HTTP/1.1 429", 0), 0u) << head;
  EXPECT_NE(head.find("Retry-After: 5\r\n"), std::string::npos) << head;
  EXPECT_NE(third.read_all().find("127.0.0.1 already has 2 connections"), std::string::npos);
  EXPECT_EQ(ts.server.stats().connections_refused, 1u);

  // Another address on the loopback network is not affected.
  RawClient other(ts.server.port(), "127.0.0.2");
  other.write(upgrade_request);
  head = other.read_head();
  EXPECT_EQ(head.rfind("HTTP/1.1 101", 0), 0u) << head;
  EXPECT_EQ(connects, 3);
}

// Linux doubles a process's descriptor table as connections arrive, and with
// several threads each doubling stalls the accepting thread for an RCU grace
// period (10-25 ms): the server grows the table to its connection limit once,
// at start. (ctest runs each case in a fresh process, whose table is small.)
TEST_F(Limits, TheDescriptorTableIsGrownToTheConnectionLimitAtStart) {
  auto fd_table_size = [] {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
      if (line.rfind("FDSize:", 0) == 0) return std::stoul(line.substr(7));
    return 0ul;
  };
  auto o = TestServer::defaults();
  o.max_connections = 3000;
  TestServer ts(app(), o);
  rlimit r{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &r), 0);
  EXPECT_GE(fd_table_size(), std::min<std::size_t>(3000 + 64, r.rlim_cur));
  WebsocketClient c;
  EXPECT_TRUE(c.connect(ts.url("/echo/")).accepted);  // and the server still serves
}

// An upgrade hands the connection from the HTTP session to the WebSocket
// session. Both used to be counted for a moment, so a client that opened its
// next connection at once, while the first one's on_connect was still
// running, was refused with 429 one below its limit.
struct SlowToFinishConnect : WebsocketConsumer {
  void on_connect() override {
    accept();
    std::this_thread::sleep_for(300ms);  // the 101 is on its way meanwhile
  }
};

TEST_F(Limits, AnUpgradeCountsOnceAgainstThePerAddressLimit) {
  auto o = TestServer::defaults();
  o.max_connections_per_ip = 2;
  TestServer ts(std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
                    {"websocket", std::make_shared<URLRouter>(std::vector<Route>{
                                      path("slow/", as_app<SlowToFinishConnect>()), path("echo/", as_app<Echo>())})}}),
                o);
  WebsocketClient first, second, third;
  ASSERT_TRUE(first.connect(ts.url("/slow/")).accepted);
  auto r = second.connect(ts.url("/echo/"));
  EXPECT_TRUE(r.accepted) << r.status << " " << r.error;
  EXPECT_EQ(third.connect(ts.url("/echo/")).status, 429);  // the limit itself still holds
}

TEST_F(Limits, SlowlorisIsCutOffAfterTheHandshakeTimeout) {
  auto o = TestServer::defaults();
  o.handshake_timeout = 1s;
  TestServer ts(app(), o);
  RawClient slow(ts.server.port());
  // One byte every 200 ms: always active, never done. Bounded at 8 s.
  auto start = std::chrono::steady_clock::now();
  bool closed = false;
  for (std::size_t i = 0; i < 40 && !closed; ++i) {
    boost::system::error_code ec;
    asio::write(slow.socket, asio::buffer(upgrade_request.data() + i, 1), ec);
    if (ec) break;
    slow.poll_read(200ms, closed);
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(closed) << "the server still waits for the request after 40 bytes";
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(connects, 0);
}

TEST_F(Limits, SilentPeerIsPingedAndClosedWhenItDoesNotAnswer) {
  auto o = TestServer::defaults();
  o.idle_timeout = 1s;
  o.keepalive_pings = true;
  TestServer ts(app(), o);
  RawClient mute(ts.server.port());
  mute.write(upgrade_request);
  ASSERT_EQ(mute.read_head().rfind("HTTP/1.1 101", 0), 0u);
  // Read frames, never answer: a ping (0x89) comes at half the idle
  // timeout, then the server gives up on us.
  std::string got = mute.rest;
  bool closed = false;
  auto start = std::chrono::steady_clock::now();
  while (!closed && std::chrono::steady_clock::now() - start < 5s) got += mute.poll_read(100ms, closed);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(static_cast<unsigned char>(got[0]), 0x89) << "expected a ping frame first";
  EXPECT_TRUE(closed);
  EXPECT_LT(took, 3s);
  ASSERT_TRUE(eventually([&] { return disconnect_codes().size() == 1; }));
}

TEST_F(Limits, PeerThatAnswersPingsStaysOpenPastTheIdleTimeout) {
  auto o = TestServer::defaults();
  o.idle_timeout = 600ms;
  o.keepalive_pings = true;
  TestServer ts(app(), o);
  WebsocketClient c;  // answers pings while it reads
  ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);
  EXPECT_FALSE(c.receive(2s));  // silent for over three idle timeouts
  ASSERT_TRUE(c.is_open());
  c.send("still here");
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "still here");
}

TEST_F(Limits, WithoutPingsASilentPeerIsClosedAtTheIdleTimeout) {
  auto o = TestServer::defaults();
  o.idle_timeout = 600ms;
  o.keepalive_pings = false;
  TestServer ts(app(), o);
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(c.receive(5s));
  EXPECT_FALSE(c.is_open());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

// A burst grows a member's inbox; the drain gives back all but a block, and
// once the connection has been quiet for an idle check, that block too.
struct SlowStart : WebsocketConsumer {
  static inline std::mutex m;
  static inline std::string channel;
  static inline std::atomic<bool> stalled{false};
  SlowStart() { handle("burst.item", &SlowStart::item); }
  void on_connect() override {
    {
      std::lock_guard l(m);
      channel = channel_name();
    }
    accept();
  }
  void item(const Message& msg) {
    if (msg["n"] == 0) {
      stalled = true;
      std::this_thread::sleep_for(300ms);  // the rest of the burst waits in the inbox
    }
    send(std::to_string(msg["n"].get<int>()));
  }
};

TEST_F(Limits, AQuietConnectionsInboxGivesBackWhatABurstGrew) {
  auto o = TestServer::defaults();
  o.idle_timeout = 1s;
  o.keepalive_pings = true;
  SlowStart::stalled = false;  // a repeated run must wait for its own consumer
  auto layer = std::make_shared<InMemoryChannelLayer>();
  TestServer ts(std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
                    {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("slow/", as_app<SlowStart>())})}}),
                o, layer);
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/slow/")).accepted);
  std::string channel;
  ASSERT_TRUE(eventually([&] {
    std::lock_guard l(SlowStart::m);
    channel = SlowStart::channel;
    return !channel.empty();
  }));
  auto inbox = layer->attach(channel);  // the consumer's own inbox (attached already)
  // The rest of the burst is sent once the consumer holds the first, so all
  // of it queues (sent at once, a busy machine let the reader take some early).
  layer->send(channel, {{"type", "burst.item"}, {"n", 0}});
  ASSERT_TRUE(eventually([] { return SlowStart::stalled.load(); }));
  for (int n = 1; n < 90; ++n) layer->send(channel, {{"type", "burst.item"}, {"n", n}});
  const auto burst = inbox->held_bytes();  // 89 wait while the consumer sleeps
  for (int n = 0; n < 90; ++n) {
    auto m = c.receive(5s);
    ASSERT_TRUE(m) << n;
    EXPECT_EQ(m->data, std::to_string(n));
  }
  EXPECT_TRUE(eventually([&] { return inbox->size() == 0; }));
  EXPECT_LT(inbox->held_bytes(), burst / 2);  // drained: the burst's blocks went back
  EXPECT_TRUE(eventually([&] { return inbox->held_bytes() == 0; }, 3s));  // an idle check came
  EXPECT_TRUE(c.is_open());
}

// 100 clients that never read sit in a busy room with 3 that do. The
// server's memory stays bounded by the per-connection send queue, and the
// readers get every message, in order.
class NeverReaders : public Limits, public ::testing::WithParamInterface<SendQueuePolicy> {};

TEST_P(NeverReaders, MemoryStaysBoundedAndReadersGetEveryMessage) {
  // A batch fits a reader's queue: readers are never the ones dropped or closed.
  constexpr int never_readers = 100, readers = 3, messages = 1000, batch = 4;
  constexpr std::size_t size = 8 * 1024;
  // Unbounded, the never-readers would hold 100 x 8 MiB; bounded, 100 x 64 KiB.
  constexpr std::size_t max_growth = 48u << 20;
  auto o = TestServer::defaults();
  o.send_queue_max_bytes = 64 * 1024;
  o.send_queue_policy = GetParam();
  o.handshake_timeout = 1s;  // how long a close frame may wait for a reader
  TestServer ts(app(), o);

  std::vector<std::unique_ptr<RawClient>> mutes;
  for (int i = 0; i < never_readers; ++i) {
    // A small receive window: the kernel absorbs little, the server sees the
    // back-pressure sooner.
    mutes.push_back(std::make_unique<RawClient>(ts.server.port(), nullptr, 4096));
    mutes.back()->write(upgrade_to("/room/"));
    ASSERT_EQ(mutes.back()->read_head().rfind("HTTP/1.1 101", 0), 0u);
  }
  std::vector<WebsocketClient> good(readers);
  for (auto& c : good) ASSERT_TRUE(c.connect(ts.url("/room/")).accepted);
  ASSERT_TRUE(eventually([&] { return connects == never_readers + readers; }));

  std::vector<std::atomic<int>> received(readers);
  std::vector<std::string> errors(readers);
  std::mutex errors_mutex;  // a reader writes its error while the sender polls
  auto error_of = [&](int r) {
    std::lock_guard lock(errors_mutex);
    return errors[r];
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < readers; ++r)
    threads.emplace_back([&, r] {
      for (int i = 0; i < messages; ++i) {
        auto m = good[r].receive(20s);
        if (!m) {
          std::lock_guard lock(errors_mutex);
          errors[r] = "reader " + std::to_string(r) + ": nothing after message " + std::to_string(i);
          return;
        }
        if (m->data.size() != size || m->data.rfind(std::to_string(i) + ":", 0) != 0) {
          std::lock_guard lock(errors_mutex);
          errors[r] = "reader " + std::to_string(r) + ": message " + std::to_string(i) + " is wrong";
          return;
        }
        ++received[r];
      }
    });

  auto baseline = rss_bytes();
  std::size_t peak = baseline;
  for (int sent = 0; sent < messages;) {
    for (int j = 0; j < batch; ++j, ++sent) {
      std::string text = std::to_string(sent) + ":";
      text.resize(size, static_cast<char>('a' + sent % 26));
      ts.server.channel_layer().group_send("room", {{"type", "room.message"}, {"text", text}});
    }
    // The readers keep up before the next batch (bounded in time).
    bool kept_up = eventually([&] {
      for (int r = 0; r < readers; ++r)
        if (received[r] < sent && error_of(r).empty()) return false;
      return true;
    }, 20s);
    peak = std::max(peak, rss_bytes());
    if (!kept_up || peak - baseline > max_growth) break;  // fail fast, before memory runs away
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < readers; ++r) {
    EXPECT_EQ(errors[r], "");
    EXPECT_EQ(received[r].load(), messages);
  }
  EXPECT_LT(peak - baseline, max_growth) << "RSS grew from " << baseline / 1024 << " KiB to " << peak / 1024 << " KiB";
  EXPECT_GT(ts.server.stats().send_queue_drops, 0u);
  if (GetParam() != SendQueuePolicy::drop) {
    // Every never-reader was closed with 1008 (close) or 1013 (close_try_again);
    // the readers are still open.
    int expected = GetParam() == SendQueuePolicy::close ? 1008 : 1013;
    ASSERT_TRUE(eventually([&] { return disconnect_codes().size() == std::size_t{never_readers}; }, 10s));
    for (int code : disconnect_codes()) EXPECT_EQ(code, expected);
  } else {
    EXPECT_EQ(disconnect_codes().size(), 0u);
  }
  for (auto& c : good) EXPECT_TRUE(c.is_open());
}

INSTANTIATE_TEST_SUITE_P(Policies, NeverReaders,
                         ::testing::Values(SendQueuePolicy::drop, SendQueuePolicy::close,
                                           SendQueuePolicy::close_try_again),
                         [](const auto& info) {
                           return info.param == SendQueuePolicy::drop    ? "Drop"
                                  : info.param == SendQueuePolicy::close ? "Close"
                                                                         : "CloseTryAgain";
                         });

// What a client that falls behind sees on the wire with each closing policy:
// the messages queued before the overflow, then a close frame with the code
// and a reason. Here the overflow comes from one burst larger than the queue,
// sent on the consumer's strand, so it does not depend on timing.
struct Burst : WebsocketConsumer {
  void on_receive(std::string_view t) override {
    int n = std::stoi(std::string(t));
    for (int i = 0; i < n; ++i) {
      std::string m = std::to_string(i) + ":";
      m.resize(8 * 1024, 'x');
      send(m);
    }
  }
  void on_disconnect(int code) override {
    std::lock_guard l(codes_mutex);
    codes.push_back(code);
  }
};

TEST_F(Limits, AClientPastTheSendQueueReadsWhatCameBeforeThenTheCloseCode) {
  for (auto [policy, code, reason] : {std::tuple{SendQueuePolicy::close, 1008, "the client is not reading"},
                                      std::tuple{SendQueuePolicy::close_try_again, 1013, "try again later"}}) {
    SCOPED_TRACE(code);
    reset_record();
    auto o = TestServer::defaults();
    o.send_queue_max_bytes = 64 * 1024;
    o.send_queue_policy = policy;
    TestServer ts(std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
                      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("burst/", as_app<Burst>())})}}),
                  o);
    WebsocketClient c;
    ASSERT_TRUE(c.connect(ts.url("/burst/")).accepted);
    c.send("100");  // 800 KiB at once into a 64 KiB queue
    int got = 0;
    while (auto m = c.receive(5s)) {
      ASSERT_EQ(m->data.rfind(std::to_string(got) + ":", 0), 0u) << "in order, none skipped";
      ++got;
    }
    EXPECT_GT(got, 0);
    EXPECT_LT(got, 100);
    EXPECT_FALSE(c.is_open());
    EXPECT_EQ(c.close_code(), code);
    EXPECT_NE(c.close_reason().find(reason), std::string::npos) << c.close_reason();
    ASSERT_TRUE(eventually([] { return disconnect_codes().size() == 1; }));
    EXPECT_EQ(disconnect_codes()[0], code);
  }
}

namespace {

// Bytes malloc has handed out and not taken back, heap and mmapped alike:
// unlike RSS, it does not depend on what the allocator returns to the system.
std::size_t heap_in_use() {
  struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

std::atomic<int> quiet_received{0};
struct Quiet : WebsocketConsumer {
  void on_connect() override { accept(); }
  void on_receive(std::string_view) override { ++quiet_received; }
};

}  // namespace

TEST_F(Limits, ALargeMessageDoesNotKeepItsReadBufferOnTheConnection) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer's allocator keeps its own books: mallinfo2 does not see them";
#endif
  quiet_received = 0;
  auto o = TestServer::defaults();
  o.threads = 1;
  TestServer ts(std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
                    {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("quiet/", as_app<Quiet>())})}}),
                o);
  constexpr int clients = 40;
  constexpr std::size_t big = 900 * 1024;  // under max_message_bytes (1 MiB)
  std::vector<WebsocketClient> ws(clients);
  for (auto& c : ws) ASSERT_TRUE(c.connect(ts.url("/quiet/")).accepted);
  const std::string payload(big, 'x');
  const std::size_t before = heap_in_use();
  for (auto& c : ws) c.send(payload);
  ASSERT_TRUE(eventually([] { return quiet_received == clients; }, 30s)) << quiet_received;
  // Each connection read 900 KiB into its buffer; what is left held once
  // the messages are handled, with all 40 connections still open, must be
  // far less than 40 such buffers (36 MiB).
  const std::size_t after = heap_in_use();
  EXPECT_LT(after > before ? after - before : 0, 4u * 1024 * 1024)
      << "heap in use grew from " << before / 1024 << " KiB to " << after / 1024 << " KiB";
  for (auto& c : ws) EXPECT_TRUE(c.is_open());
}
