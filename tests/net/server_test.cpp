// The server over real sockets, with the framework's own client: handshake,
// refusal, routing misses, frames, limits, disconnects and shutdown.

#include <atomic>
#include <fstream>
#include <mutex>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::TestServer;

namespace testing_support {
std::string http_get(std::uint16_t port, const std::string& raw) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  boost::asio::write(s, boost::asio::buffer(raw));
  std::string out;
  boost::system::error_code ec;
  char buf[4096];
  // The server closes after answering (Connection: close or an error).
  for (int i = 0; i < 10000; ++i) {
    auto n = s.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}
}  // namespace testing_support
using testing_support::http_get;

namespace {

// What the consumers saw, for the tests to check.
struct Record {
  std::mutex m;
  std::vector<int> disconnect_codes;
  std::atomic<int> connects{0};
  std::vector<std::string> errors;
  void disconnected(int code) {
    std::lock_guard l(m);
    disconnect_codes.push_back(code);
  }
  std::vector<int> codes() {
    std::lock_guard l(m);
    return disconnect_codes;
  }
};
Record* record = nullptr;

struct Echo : WebsocketConsumer {
  void on_connect() override {
    ++record->connects;
    accept();
  }
  void on_receive(std::string_view t) override { send(t); }
  void on_receive_bytes(std::string_view b) override { send_bytes(b); }
  void on_disconnect(int code) override { record->disconnected(code); }
};

struct Refuse : WebsocketConsumer {
  void on_connect() override {
    ++record->connects;
    close();
  }
  void on_disconnect(int code) override { record->disconnected(code); }
};

// Accepts later, from a timer: on_connect need not decide at once.
struct LateAccept : WebsocketConsumer {
  std::shared_ptr<boost::asio::steady_timer> timer;
  void on_connect() override {
    timer = std::make_shared<boost::asio::steady_timer>(executor(), 100ms);
    timer->async_wait([this](boost::system::error_code ec) {
      if (!ec) {
        accept();
        send("accepted late");
      }
    });
  }
};

struct Scoped : WebsocketConsumer {
  void on_connect() override {
    accept(scope().subprotocols.empty() ? "" : scope().subprotocols.back());
    Json headers = Json::object();
    for (auto& [k, v] : scope().headers) headers[k] = v;
    send(Json{{"type", scope().type},
              {"path", scope().path},
              {"raw_path", scope().raw_path},
              {"query_string", scope().query_string},
              {"token", scope().query("token").value_or("")},
              {"scheme", scope().scheme},
              {"client", scope().client.host},
              {"client_port", scope().client.port},
              {"server_port", scope().server.port},
              {"subprotocols", scope().subprotocols},
              {"kwargs", scope().url_route.kwargs},
              {"headers", headers},
              {"channel", channel_name()}}
             .dump());
  }
};

struct Thrower : WebsocketConsumer {
  void on_receive(std::string_view t) override {
    if (t == "boom") throw std::runtime_error("boom");
    send(t);
  }
  void on_disconnect(int code) override { record->disconnected(code); }
};

// Sends itself layer messages: a known type, then an unknown one.
struct SelfMessenger : WebsocketConsumer {
  SelfMessenger() { handle("note.add", &SelfMessenger::note_add); }
  void on_receive(std::string_view t) override {
    channel_layer().send(channel_name(), {{"type", t}, {"text", "via layer"}});
  }
  void note_add(const Message& m) {
    EXPECT_TRUE(on_strand());
    send(m["text"].get<std::string>());
  }
};

// Sends, in one turn, frames of every header size class (7-bit, 16-bit and
// 64-bit lengths, around the size where payloads stop being copied), text
// and binary alternating: they leave in one gathered write.
const std::vector<std::size_t> burst_sizes = {0, 1, 125, 126, 127, 1023, 1024, 1025, 65535, 65536, 70000, 3};
std::string burst_payload(std::size_t i, std::size_t size) {
  std::string p(size, '\0');
  for (std::size_t k = 0; k < size; ++k) p[k] = static_cast<char>('a' + (i + k) % 26);
  return p;
}
struct Burst : WebsocketConsumer {
  void on_receive(std::string_view) override {
    for (std::size_t i = 0; i < burst_sizes.size(); ++i) {
      auto p = burst_payload(i, burst_sizes[i]);
      if (i % 2) send_bytes(p); else send(p);
    }
    close(4321, "burst done");
  }
};

struct Hello : HttpConsumer {
  void on_request(const HttpRequest& req) override {
    send_response(200, "hello " + req.method + " " + scope().kwarg("name") + " " + req.body,
                  {{"Content-Type", "text/plain"}});
  }
};

ApplicationPtr app(std::filesystem::path static_root = {}) {
  RouteOptions statics;
  statics.options = {{"root", static_root.string()}};
  return std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{
                        path("echo/", as_app<Echo>()),
                        path("refuse/", as_app<Refuse>()),
                        path("late/", as_app<LateAccept>()),
                        path("scope/<str:name>/<int:n>/", as_app<Scoped>()),
                        path("throw/", as_app<Thrower>()),
                        path("self/", as_app<SelfMessenger>()),
                        path("burst/", as_app<Burst>()),
                    })},
      {"http", std::make_shared<URLRouter>(std::vector<Route>{
                   path("hello/<str:name>/", as_app<Hello>()),
                   path("static/<path:path>", as_app<StaticFiles>(statics)),
               })},
  });
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override { record = &rec; }
  void TearDown() override { record = nullptr; }
  Record rec;
};

}  // namespace

TEST_F(ServerTest, EchoKeepsTextAndBinary) {
  TestServer ts(app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);
  c.send("hello");
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->binary);
  EXPECT_EQ(m->data, "hello");
  std::string bytes("\x00\x01\xff\x80", 4);
  c.send_bytes(bytes);
  m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->binary);
  EXPECT_EQ(m->data, bytes);
  c.send("");
  m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "");
  c.close();
  EXPECT_EQ(c.close_code(), 1000);
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1000);
}

TEST_F(ServerTest, FramesSentInOneTurnArriveWholeAndInOrderBeforeTheClose) {
  TestServer ts(app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/burst/")).accepted);
  c.send("go");
  for (std::size_t i = 0; i < burst_sizes.size(); ++i) {
    auto m = c.receive();
    ASSERT_TRUE(m) << "frame " << i;
    EXPECT_EQ(m->binary, i % 2 == 1) << "frame " << i;
    EXPECT_EQ(m->data.size(), burst_sizes[i]) << "frame " << i;
    EXPECT_EQ(m->data, burst_payload(i, burst_sizes[i])) << "frame " << i;
  }
  EXPECT_FALSE(c.receive(5s));
  EXPECT_EQ(c.close_code(), 4321);
  EXPECT_EQ(c.close_reason(), "burst done");
}

TEST_F(ServerTest, CloseInOnConnectRefusesWith403) {
  TestServer ts(app());
  WebsocketClient c;
  auto r = c.connect(ts.url("/refuse/"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(rec.connects, 1);
  // on_disconnect runs for a refused connection too, once.
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(rec.codes().size(), 1u);
}

TEST_F(ServerTest, UnknownPathIsRefusedWith404BeforeAnyConsumer) {
  TestServer ts(app());
  WebsocketClient c;
  auto r = c.connect(ts.url("/nowhere/"));
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(rec.connects, 0);
  auto res = http_get(ts.server.port(), "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(res.rfind("HTTP/1.1 404", 0), 0u) << res;
}

TEST_F(ServerTest, OnConnectMayAcceptLater) {
  TestServer ts(app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/late/")).accepted);
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "accepted late");
}

TEST_F(ServerTest, ScopeCarriesPathQueryHeadersSubprotocolsAndKwargs) {
  TestServer ts(app());
  WebsocketClient c;
  WebsocketClient::Options o;
  o.headers = {{"X-Custom", "yes"}, {"Origin", "http://example.com"}};
  o.subprotocols = {"chat.v1", "chat.v2"};
  auto r = c.connect(ts.url("/scope/caf%C3%A9/42/?token=a%20b&x=1"), o);
  ASSERT_TRUE(r.accepted);
  EXPECT_EQ(r.subprotocol, "chat.v2");
  auto m = c.receive();
  ASSERT_TRUE(m);
  auto s = Json::parse(m->data);
  EXPECT_EQ(s["type"], "websocket");
  EXPECT_EQ(s["path"], "/scope/caf\xc3\xa9/42/");
  EXPECT_EQ(s["raw_path"], "/scope/caf%C3%A9/42/");
  EXPECT_EQ(s["query_string"], "token=a%20b&x=1");
  EXPECT_EQ(s["token"], "a b");
  EXPECT_EQ(s["scheme"], "ws");
  EXPECT_EQ(s["client"], "127.0.0.1");
  EXPECT_GT(s["client_port"].get<int>(), 0);
  EXPECT_EQ(s["server_port"], ts.server.port());
  EXPECT_EQ(s["subprotocols"], (Json{"chat.v1", "chat.v2"}));
  EXPECT_EQ(s["kwargs"]["name"], "caf\xc3\xa9");
  EXPECT_EQ(s["kwargs"]["n"], 42);
  EXPECT_EQ(s["headers"]["x-custom"], "yes");
  EXPECT_EQ(s["headers"]["origin"], "http://example.com");
  EXPECT_TRUE(valid_channel_name(s["channel"].get<std::string>()));
}

TEST_F(ServerTest, OversizedMessageClosesWith1009) {
  auto o = TestServer::defaults();
  o.max_message_bytes = 1000;
  TestServer ts(app(), o);
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);
  c.send(std::string(1000, 'a'));  // at the limit: fine
  ASSERT_TRUE(c.receive());
  c.send(std::string(1001, 'a'));
  EXPECT_FALSE(c.receive());
  EXPECT_EQ(c.close_code(), 1009);
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1009);
}

TEST_F(ServerTest, DroppedTcpRunsOnDisconnectOnceWith1006) {
  TestServer ts(app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/echo/")).accepted);
  c.send("x");
  ASSERT_TRUE(c.receive());
  c.abort();
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1006);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(rec.codes().size(), 1u);
}

TEST_F(ServerTest, ConsumerThatThrowsClosesOnlyItsConnectionWith1011) {
  TestServer ts(app());
  WebsocketClient bad, good;
  ASSERT_TRUE(bad.connect(ts.url("/throw/")).accepted);
  ASSERT_TRUE(good.connect(ts.url("/throw/")).accepted);
  bad.send("boom");
  EXPECT_FALSE(bad.receive());
  EXPECT_EQ(bad.close_code(), 1011);
  good.send("still fine");
  auto m = good.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "still fine");
  ASSERT_TRUE(eventually([&] { return rec.codes().size() == 1; }));
  EXPECT_EQ(rec.codes()[0], 1011);
}

TEST_F(ServerTest, LayerMessagesRunTypedHandlersOnTheStrandAndUnknownTypesKeepTheConnection) {
  TestServer ts(app());
  WebsocketClient c;
  ASSERT_TRUE(c.connect(ts.url("/self/")).accepted);
  c.send("no.such.type");
  c.send("note.add");
  auto m = c.receive();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "via layer");
  EXPECT_TRUE(c.is_open());
}

TEST_F(ServerTest, ShutdownClosesEveryWebsocketWith1001) {
  auto ts = std::make_unique<TestServer>(app());
  std::vector<WebsocketClient> clients(5);
  for (auto& c : clients) ASSERT_TRUE(c.connect(ts->url("/echo/")).accepted);
  auto start = std::chrono::steady_clock::now();
  std::thread stopper([&] { ts->server.shutdown(); });
  for (auto& c : clients) {
    EXPECT_FALSE(c.receive(5s));
    EXPECT_EQ(c.close_code(), 1001);
  }
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  auto codes = rec.codes();
  EXPECT_EQ(codes.size(), 5u);
  for (int code : codes) EXPECT_EQ(code, 1001);
  // New connections are refused once stopped.
  WebsocketClient late;
  EXPECT_FALSE(late.connect(ts->url("/echo/")).accepted);
}

TEST_F(ServerTest, ShutdownCutsClientsThatNeverAnswerAfterTheDrainTimeout) {
  auto o = TestServer::defaults();
  o.drain_timeout = 300ms;
  o.handshake_timeout = 10s;
  auto ts = std::make_unique<TestServer>(app(), o);
  // A raw TCP client that completes the handshake and then never reads.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket s(ioc);
  s.connect({boost::asio::ip::make_address("127.0.0.1"), ts->server.port()});
  std::string hs =
      "GET /echo/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  boost::asio::write(s, boost::asio::buffer(hs));
  ASSERT_TRUE(eventually([&] { return rec.connects == 1; }));
  auto start = std::chrono::steady_clock::now();
  ts->server.shutdown();
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, 3s);
  ASSERT_EQ(rec.codes().size(), 1u);  // on_disconnect still ran, once
}

TEST_F(ServerTest, MalformedHandshakesGetAStatusAndAReason) {
  TestServer ts(app());
  auto port = ts.server.port();
  std::string base = "GET /echo/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
  auto no_key = http_get(port, base + "Sec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(no_key.rfind("HTTP/1.1 400", 0), 0u) << no_key;
  EXPECT_NE(no_key.find("Sec-WebSocket-Key"), std::string::npos);
  auto old_version = http_get(port, base + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
  EXPECT_EQ(old_version.rfind("HTTP/1.1 426", 0), 0u) << old_version;
  EXPECT_NE(old_version.find("Sec-WebSocket-Version: 13"), std::string::npos);
  auto garbage = http_get(port, "HELLO\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
  EXPECT_EQ(rec.connects, 0);
}

TEST_F(ServerTest, OversizedHeadersGet431) {
  TestServer ts(app());
  std::string big(20000, 'a');
  auto res = http_get(ts.server.port(), "GET /hello/x/ HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  EXPECT_EQ(res.rfind("HTTP/1.1 431", 0), 0u) << res.substr(0, 200);
}

TEST_F(ServerTest, HttpConsumerAnswersWithKeepAlive) {
  TestServer ts(app());
  auto res = http_get(ts.server.port(),
                      "GET /hello/ann/ HTTP/1.1\r\nHost: x\r\n\r\n"
                      "POST /hello/bob/ HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody");
  EXPECT_NE(res.find("hello GET ann "), std::string::npos) << res;
  EXPECT_NE(res.find("hello POST bob body"), std::string::npos) << res;
}

TEST_F(ServerTest, StaticFilesStayInsideTheirRoot) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("channels-static-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "root" / "sub");
  std::ofstream(dir / "root" / "sub" / "app.js") << "console.log(1)";
  std::ofstream(dir / "secret.txt") << "SECRET";
  fs::create_symlink(dir / "secret.txt", dir / "root" / "link.txt");
  TestServer ts(app(dir / "root"));
  auto get = [&](std::string target) {
    return http_get(ts.server.port(), "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  };
  auto ok = get("/static/sub/app.js");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_NE(ok.find("text/javascript"), std::string::npos);
  EXPECT_NE(ok.find("console.log(1)"), std::string::npos);
  for (std::string bad : {"/static/../secret.txt", "/static/sub/../../secret.txt", "/static/%2e%2e/secret.txt",
                          "/static/link.txt", "/static//etc/passwd", "/static/sub/", "/static/missing.js"}) {
    auto res = get(bad);
    EXPECT_EQ(res.rfind("HTTP/1.1 404", 0), 0u) << bad << " -> " << res.substr(0, 100);
    EXPECT_EQ(res.find("SECRET"), std::string::npos) << bad;
  }
  fs::remove_all(dir);
}
