#pragma once
// A private redis-server for the length of a test: started on a free
// loopback port with no persistence, stopped by its PID. Also a small
// blocking client to look at (or tamper with) what the layer stored.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

struct redisContext;

namespace testing_support {

class RedisServer {
 public:
  /// Starts one (throws std::runtime_error saying what to install or check
  /// if it cannot).
  RedisServer();
  /// One for `port`, not started yet (to test a layer that starts first).
  explicit RedisServer(std::uint16_t port);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  /// SIGTERM, wait (SIGKILL after 5 s). Its data is gone with it.
  void stop();
  /// Starts again on the same port.
  void start();
  bool running() const { return pid_ > 0; }

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  /// One command, blocking, on the test's own connection; the reply as
  /// text (integers as digits, nil as "(nil)", errors as "ERR ..."), arrays
  /// flattened into `items`.
  struct Reply {
    int type = 0;
    long long integer = 0;
    std::string str;
    std::vector<std::string> items;
    bool is_error() const;
  };
  Reply command(const std::vector<std::string>& args);

 private:
  void spawn();
  void wait_ready();
  redisContext* client();

  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string log_path_;
  redisContext* ctx_ = nullptr;
};

/// A port that nothing listens on right now (bound, read, released).
std::uint16_t free_loopback_port();

}  // namespace testing_support
