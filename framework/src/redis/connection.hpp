#pragma once
// One connection to one Redis server: hiredis' async API driven by Asio.
// hiredis parses and formats; Asio tells it when the socket is ready (its
// addRead/delRead/addWrite/delWrite/cleanup hooks). No thread ever blocks
// on Redis: a blocking pop is just a command whose reply comes late.
//
// Every reply arrives in order, so the oldest command in flight is the one
// whose time runs out first: if it is late, the connection is judged dead,
// dropped (every command in flight fails) and opened again with back-off.
// Private to the Redis layer; used only on the layer's own thread.

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "redis_url.hpp"

struct redisAsyncContext;
struct redisReply;

namespace channels::redis {

/// Why a command got no reply.
enum class CommandError {
  ok = 0,
  not_connected = 1,  // the connection was down when the command was issued
  disconnected = 2,   // it went down before the reply came
  timed_out = 3,      // no reply in time: the connection was dropped
};
std::error_code make_error_code(CommandError e);

struct ConnectionOptions {
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds command_timeout{5'000};
  std::chrono::milliseconds retry_min{100};   // first reconnect delay, doubled up to retry_max
  std::chrono::milliseconds retry_max{5'000};
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  /// `reply` is null when `ec` is set; it lives only during the call. A
  /// Redis error reply (REDIS_REPLY_ERROR) comes with an empty `ec`.
  using Callback = std::function<void(const redisReply* reply, std::error_code ec)>;

  Connection(boost::asio::io_context& ioc, Endpoint endpoint, ConnectionOptions options, std::string role);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Called each time the connection is ready for commands (after AUTH and
  /// SELECT); `recovered` is false only for a first success without an
  /// earlier failure.
  std::function<void(bool recovered)> on_up;
  /// Called when a ready connection is lost (after its commands in flight
  /// have failed).
  std::function<void()> on_down;

  /// Connects, and reconnects after every loss until stop().
  void start();
  /// Drops the connection now (commands in flight fail) and stays down.
  void stop();
  /// Stops once nothing is in flight, or at `deadline`, then calls `done`.
  void stop_when_idle(std::chrono::steady_clock::time_point deadline, std::function<void()> done);

  bool up() const { return state_ == State::up; }
  std::size_t in_flight() const { return pending_.size(); }
  const Endpoint& endpoint() const { return endpoint_; }

  /// Pub/sub: each message published on a subscribed channel, as it comes.
  /// A connection that subscribes is good for nothing else (Redis' rule).
  std::function<void(std::string_view channel, std::string_view payload)> on_message;
  /// SUBSCRIBE / UNSUBSCRIBE. Redis confirms each channel with one push; a
  /// confirmation later than command_timeout means a hung server and is
  /// judged like a late reply (the connection is dropped and reopened), so
  /// a listening connection has timeouts too. `done` runs once every channel
  /// is confirmed, or with the error if the connection is down (then
  /// nothing is sent: subscribe again from on_up) or lost first.
  using Done = std::function<void(std::error_code)>;
  void subscribe(const std::vector<std::string_view>& channels, Done done = {});
  void unsubscribe(const std::vector<std::string_view>& channels);

  /// Queues one command. While a connection attempt is under way it is held
  /// and sent once the connection is up (or fails with it); between attempts
  /// it fails at once (callback run before this returns, with
  /// not_connected). `timeout` 0 means the connection's command_timeout.
  void command(const std::vector<std::string_view>& args, Callback cb,
               std::chrono::milliseconds timeout = std::chrono::milliseconds::zero());

 private:
  enum class State { idle, resolving, connecting, handshaking, up, stopped };
  struct Watcher;
  struct Pending;
  struct Held {
    std::vector<std::string> args;
    Callback cb;
    std::chrono::milliseconds timeout;
  };

  void connect();
  void open(const std::string& ip);
  void handshake();
  void became_up();
  void drop(CommandError why, const std::string& reason);
  void lost(const std::string& reason);
  void retry_later(const std::string& failure);
  void arm_timeout();
  void fail_held(CommandError why);
  void send_raw(const std::vector<std::string_view>& args, Callback cb, std::chrono::milliseconds timeout);

  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_push(redisAsyncContext* ac, void* reply, void* privdata);
  void sub_command(const char* verb, const std::vector<std::string_view>& channels, Done done);
  void fail_confirmations(CommandError why);

  boost::asio::io_context& ioc_;
  const Endpoint endpoint_;
  const ConnectionOptions options_;
  const std::string role_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer connect_timer_;
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer timeout_timer_;
  bool timeout_armed_ = false;

  State state_ = State::idle;
  redisAsyncContext* ac_ = nullptr;
  bool dying_ = false;  // hiredis is tearing ac_ down: queue nothing more
  std::shared_ptr<Watcher> watcher_;
  std::deque<std::chrono::steady_clock::time_point> pending_;  // deadlines, oldest first
  std::deque<Held> held_;  // issued during a connection attempt, sent when it is up
  struct Confirmations {
    std::size_t left;  // channels of one (UN)SUBSCRIBE not confirmed yet
    Done done;
  };
  std::deque<Confirmations> confirmations_;  // oldest first; their deadlines are in pending_
  CommandError fail_reason_ = CommandError::disconnected;      // for callbacks run by a drop
  std::chrono::milliseconds backoff_;
  unsigned failures_ = 0;     // since the last success
  bool ever_failed_ = false;  // before the first success
  bool ever_up_ = false;
  unsigned attempt_ = 0;       // tells a stale connect timer from the current one
};

}  // namespace channels::redis

template <>
struct std::is_error_code_enum<channels::redis::CommandError> : std::true_type {};
