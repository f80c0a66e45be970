// The Prometheus endpoint scraped over HTTP while real clients talk, and the
// access log: numbers must move with the traffic.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include <gtest/gtest.h>

#include "../support/async_test_consumers.hpp"
#include "test_server.hpp"

using namespace channels;
using namespace std::chrono_literals;
using testing_support::eventually;
using testing_support::http_get;
using testing_support::TestServer;

namespace {

std::string scrape(const TestServer& ts, const std::string& path = "/metrics") {
  return http_get(ts.server.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
}

// The value of one sample ("name" or "name{labels}"), or -1 if absent.
double sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

ServerOptions with_metrics() {
  auto o = TestServer::defaults();
  o.metrics_path = "/metrics";
  return o;
}

}  // namespace

TEST(Metrics, OffByDefault) {
  TestServer ts(async_test::app());
  auto r = scrape(ts);
  EXPECT_NE(r.find("404"), std::string::npos) << r;
  EXPECT_EQ(r.find("cppchannels_"), std::string::npos);
}

TEST(Metrics, NumbersMoveWithTraffic) {
  LayerOptions lo;
  lo.capacity = 1;
  TestServer ts(async_test::app(), with_metrics(), std::make_shared<InMemoryChannelLayer>(lo));
  auto before = scrape(ts);
  ASSERT_NE(before.find("200 OK"), std::string::npos) << before;
  ASSERT_NE(before.find("text/plain; version=0.0.4"), std::string::npos) << before;
  EXPECT_EQ(sample(before, "cppchannels_websocket_connections_open"), 0);
  EXPECT_EQ(sample(before, "cppchannels_websocket_messages_received_total"), 0);

  WebsocketClient a, b, refused, missing;
  ASSERT_TRUE(a.connect(ts.url("/chat/m/")).accepted);
  ASSERT_TRUE(b.connect(ts.url("/chat/m/")).accepted);
  EXPECT_EQ(missing.connect(ts.url("/nowhere/")).status, 404);
  EXPECT_EQ(refused.connect(ts.url("/throw-connect/")).status, 403);
  for (int i = 0; i < 5; ++i) {
    std::string msg = R"({"message": "m)" + std::to_string(i) + "\"}";
    a.send(msg);
    ASSERT_TRUE(a.receive(3s));
    ASSERT_TRUE(b.receive(3s));
  }
  // Two messages to a channel nobody reads, at capacity 1: one is dropped.
  ts.server.channel_layer().send("specific.nobody", {{"type", "x"}});
  ts.server.channel_layer().send("specific.nobody", {{"type", "x"}});

  auto during = scrape(ts);
  EXPECT_EQ(sample(during, "cppchannels_websocket_connections_open"), 2) << during;
  EXPECT_EQ(sample(during, "cppchannels_websocket_messages_received_total"), 5);
  EXPECT_GT(sample(during, "cppchannels_websocket_received_bytes_total"), 5 * 15);
  EXPECT_EQ(sample(during, "cppchannels_websocket_messages_sent_total"), 10);
  EXPECT_GT(sample(during, "cppchannels_websocket_sent_bytes_total"), 10 * 15);
  EXPECT_EQ(sample(during, "cppchannels_layer_groups"), 1);
  EXPECT_EQ(sample(during, "cppchannels_layer_group_members"), 2);
  EXPECT_GE(sample(during, "cppchannels_layer_messages_delivered_total"), 10);
  EXPECT_EQ(sample(during, "cppchannels_layer_capacity_drops_total"), 1);
  EXPECT_EQ(sample(during, "cppchannels_websocket_handshake_failures_total{reason=\"not_found\"}"), 1);
  EXPECT_EQ(sample(during, "cppchannels_websocket_handshake_failures_total{reason=\"refused\"}"), 1);
  EXPECT_EQ(sample(during, "cppchannels_send_queue_overflows_total"), 0);

  a.close();
  b.close();
  ASSERT_TRUE(eventually([&] { return sample(scrape(ts), "cppchannels_websocket_connections_open") == 0; }));
  auto after = scrape(ts);
  EXPECT_EQ(sample(after, "cppchannels_websocket_disconnects_total"), 2);
  EXPECT_EQ(sample(after, "cppchannels_layer_groups"), 0);
}

TEST(AccessLog, OneLinePerRequestAndPerConnectAndDisconnect) {
  auto file = std::filesystem::temp_directory_path() / ("cppchannels-access-" + std::to_string(::getpid()) + ".log");
  std::filesystem::remove(file);
  {
    auto o = with_metrics();
    o.access_log = file.string();
    TestServer ts(async_test::app(), o);
    scrape(ts);
    WebsocketClient c;
    ASSERT_TRUE(c.connect(ts.url("/chat/log/")).accepted);
    c.close(1000);
    WebsocketClient missing;
    missing.connect(ts.url("/nowhere/"));
  }
  std::ifstream in(file);
  std::stringstream all;
  all << in.rdbuf();
  std::string text = all.str();
  std::filesystem::remove(file);
  // "client - "GET /metrics HTTP/1.1" 200 bytes duration"
  EXPECT_NE(text.find("\"GET /metrics HTTP/1.1\" 200 "), std::string::npos) << text;
  EXPECT_NE(text.find("WSCONNECT /chat/log/ 127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("WSDISCONNECT /chat/log/ 127.0.0.1:"), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /nowhere/ HTTP/1.1\" 404 "), std::string::npos) << text;
  // The disconnect line carries the close code and how long it lasted.
  auto d = text.find("WSDISCONNECT");
  auto line = text.substr(d, text.find('\n', d) - d);
  EXPECT_NE(line.find(" 1000 "), std::string::npos) << line;
  EXPECT_NE(line.find("ms"), std::string::npos) << line;
}
