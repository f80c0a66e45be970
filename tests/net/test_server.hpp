#pragma once
// A server on a free loopback port for the length of a test.

#include <chrono>
#include <functional>
#include <thread>

#include <channels/channels.hpp>

namespace testing_support {

struct TestServer {
  explicit TestServer(channels::ApplicationPtr app, channels::ServerOptions options = defaults(),
                      std::shared_ptr<channels::ChannelLayer> layer = std::make_shared<channels::InMemoryChannelLayer>())
      : server(std::move(options), std::move(app), std::move(layer)) {
    server.start();
  }
  ~TestServer() { server.shutdown(); }

  static channels::ServerOptions defaults() {
    channels::ServerOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.threads = 2;
    return o;
  }

  std::string url(std::string_view path) const {
    return "ws://127.0.0.1:" + std::to_string(server.port()) + std::string(path);
  }

  channels::Server server;
};

/// Polls `pred` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

/// One HTTP/1.1 request over a plain socket; returns the whole response text.
std::string http_get(std::uint16_t port, const std::string& raw_request);

}  // namespace testing_support
