#include "redis_server.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <csignal>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace testing_support {

using namespace std::chrono_literals;

std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool RedisServer::Reply::is_error() const { return type == REDIS_REPLY_ERROR; }

namespace {
std::string temp_log() {
  std::string path = (std::filesystem::temp_directory_path() / "cppchannels-redis-XXXXXX").string();
  int fd = ::mkstemp(path.data());
  if (fd >= 0) ::close(fd);
  return path;
}
}  // namespace

RedisServer::RedisServer(std::uint16_t port) : port_(port), log_path_(temp_log()) {}

RedisServer::RedisServer() : log_path_(temp_log()) {
  // The port may be taken between choosing and binding: try a few.
  std::string last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = free_loopback_port();
    try {
      start();
      return;
    } catch (const std::runtime_error& e) {
      last = e.what();
      stop();
    }
  }
  throw std::runtime_error(last);
}

RedisServer::~RedisServer() {
  stop();
  if (!log_path_.empty()) ::unlink(log_path_.c_str());
}

void RedisServer::start() {
  if (pid_ > 0) return;
  spawn();
  wait_ready();
}

void RedisServer::spawn() {
  std::string port = std::to_string(port_);
  std::vector<std::string> args{"redis-server", "--port", port,  "--bind",      "127.0.0.1", "--save", "",
                                "--appendonly", "no",     "--daemonize", "no",  "--protected-mode", "yes",
                                "--loglevel", "warning", "--logfile", ""};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  // Nothing else: a redis-server started mid-test would otherwise hold
  // copies of the test's sockets (Asio does not set FD_CLOEXEC), and a
  // client closing its end would never reach the server.
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  int rc = posix_spawnp(&pid_, "redis-server", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error(std::string("cannot start redis-server: ") + std::strerror(rc) +
                             " (install it with scripts/install-deps.sh --test)");
  }
}

void RedisServer::wait_ready() {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(log_path_);
      std::stringstream ss;
      ss << in.rdbuf();
      throw std::runtime_error("redis-server on port " + std::to_string(port_) + " exited at start: " + ss.str());
    }
    timeval tv{0, 200'000};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c && !c->err) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      bool ok = r && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
      redisFree(c);
      if (ok) return;
    } else if (c) {
      redisFree(c);
    }
    std::this_thread::sleep_for(20ms);
  }
  throw std::runtime_error("redis-server on port " + std::to_string(port_) + " did not answer PING within 10 s");
}

void RedisServer::stop() {
  if (ctx_) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  pid_ = -1;
}

redisContext* RedisServer::client() {
  if (ctx_ && ctx_->err) {
    redisFree(ctx_);
    ctx_ = nullptr;
  }
  if (!ctx_) {
    timeval tv{2, 0};
    ctx_ = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!ctx_ || ctx_->err) throw std::runtime_error("test client cannot reach redis on port " + std::to_string(port_));
    redisSetTimeout(ctx_, tv);
  }
  return ctx_;
}

RedisServer::Reply RedisServer::command(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(client(), static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error("test client: " + std::string(ctx_->errstr));
  Reply out;
  out.type = r->type;
  out.integer = r->integer;
  if (r->str) out.str.assign(r->str, r->len);
  if (r->type == REDIS_REPLY_NIL) out.str = "(nil)";
  for (std::size_t i = 0; i < r->elements; ++i) {
    auto* e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) out.items.push_back(std::to_string(e->integer));
    else if (e->str) out.items.emplace_back(e->str, e->len);
    else out.items.emplace_back();
  }
  freeReplyObject(r);
  return out;
}

}  // namespace testing_support
