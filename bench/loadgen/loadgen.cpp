// loadgen: a WebSocket load generator for cppchannels' benchmarks.
//
// One thread, one io_context, the client side of RFC 6455 written by hand:
// the HTTP upgrade, masked frames, every complete frame in a read parsed at
// once, and whatever is queued for a connection coalesced into one write.
//
// Modes (one JSON object on stdout per run):
//   echo     N connections, closed loop, K messages in flight on each:
//            msgs/s and round-trip p50/p99/max.
//   fanout   N members of one room plus one publisher (--publishers P: P of
//            them; members too) sending as fast as the server reads (or --rate per second), for
//            --count messages or --duration seconds. Every payload carries
//            "i=<id> t=<send time>", found inside whatever the server wraps it
//            in (plain text or JSON): deliveries/s, delivery latency, and
//            messages lost (expected deliveries minus received, after a drain).
//   connect  opens N connections (handshakes/s), then holds them idle; with
//            --pid, reads the server's VmRSS before and while they are held.
//
// Every run is bounded in time (--timeout, derived from the other settings if
// not given) and stops by itself.

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

// ---------------------------------------------------------------- options

struct Options {
  std::string url = "ws://127.0.0.1:8000/ws/echo/";
  std::string mode = "echo";
  int connections = 100;
  int inflight = 1;
  std::size_t size = 32;
  double duration = 5;
  double warmup = 1;
  std::uint64_t count = 0;  // 0: bounded by --duration only
  std::string wrap = "auto";  // fanout payload: text, json, or auto (json for ws/chat/)
  double rate = 0;            // fanout: messages/s in all; 0: as fast as the server reads
  int publishers = 1;         // fanout: publishing connections (also members, not counted in --connections)
  int rooms = 1;              // fanout: rooms; above 1, --connections members in each, the first publishing
  double drain = 20;          // fanout: longest wait for deliveries after the last send
  double idle_drain = 2;      // fanout: stop draining after this long without a delivery
  double join_wait = 0.2;     // fanout: seconds between the last handshake and the first publish
  std::vector<std::string> also_urls;  // more servers on the same route: connection i goes to server i % count
  int handshake_concurrency = 64;
  int sources = 0;   // loopback source addresses 127.0.0.1.. ; 0: one per 20,000 connections
  int pid = 0;       // server pid, for VmRSS (connect mode)
  double hold = 2;   // connect: seconds to hold the idle connections
  double settle = 1; // connect: seconds between the last handshake and reading VmRSS
  double timeout = 0;

  std::string host = "127.0.0.1";
  std::string port = "8000";
  std::string path = "/ws/echo/";
};

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: loadgen --mode echo|fanout|connect --url ws://127.0.0.1:PORT/PATH [options]\n"
               "  --connections N         connections (echo), room members (fanout), idle connections (connect)\n"
               "  --inflight K            echo: messages in flight per connection (1)\n"
               "  --size BYTES            message payload size (32)\n"
               "  --duration S            echo: measured seconds; fanout: longest publishing time (5)\n"
               "  --warmup S              echo: unmeasured seconds before (1)\n"
               "  --count N               echo: most messages; fanout: messages to publish (0: no bound)\n"
               "  --rate R                fanout: publish R messages/s in all (0: as fast as the server reads)\n"
               "  --publishers P          fanout: P publishing connections, each also a member (1)\n"
               "  --rooms R               fanout: R rooms of --connections members each, {room} in the url\n"
               "                          numbers them, one member of each publishes (--count in all)\n"
               "  --wrap text|json|auto   fanout: send the payload as is or as {\"message\": ...} (auto)\n"
               "  --drain S               fanout: longest wait for deliveries after the last send (20)\n"
               "  --idle-drain S          fanout: stop waiting after S without a delivery (2)\n"
               "  --join-wait S           fanout: wait between the last handshake and the first publish (0.2)\n"
               "  --also-url URL          one more server with the same path, repeatable: connection i goes to\n"
               "                          server i %% servers (--url is server 0), publishers included; for a\n"
               "                          room spread over processes that share a channel layer\n"
               "  --handshake-concurrency N   handshakes in progress at once (64)\n"
               "  --sources N             loopback source addresses to spread connections over (auto)\n"
               "  --pid PID               connect: server process whose VmRSS to read\n"
               "  --hold S                connect: seconds to hold the idle connections (2)\n"
               "  --timeout S             hard limit for the whole run (derived from the above)\n");
  std::exit(code);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") usage(0);
    if (i + 1 >= argc) {
      std::fprintf(stderr, "loadgen: %s needs a value\n", a.c_str());
      usage(2);
    }
    std::string v = argv[++i];
    try {
      if (a == "--url") o.url = v;
      else if (a == "--mode") o.mode = v;
      else if (a == "--connections") o.connections = std::stoi(v);
      else if (a == "--inflight") o.inflight = std::stoi(v);
      else if (a == "--size") o.size = std::stoul(v);
      else if (a == "--duration") o.duration = std::stod(v);
      else if (a == "--warmup") o.warmup = std::stod(v);
      else if (a == "--count") o.count = std::stoull(v);
      else if (a == "--rate") o.rate = std::stod(v);
      else if (a == "--publishers") o.publishers = std::stoi(v);
      else if (a == "--rooms") o.rooms = std::stoi(v);
      else if (a == "--wrap") o.wrap = v;
      else if (a == "--drain") o.drain = std::stod(v);
      else if (a == "--idle-drain") o.idle_drain = std::stod(v);
      else if (a == "--join-wait") o.join_wait = std::stod(v);
      else if (a == "--also-url") o.also_urls.push_back(v);
      else if (a == "--handshake-concurrency") o.handshake_concurrency = std::stoi(v);
      else if (a == "--sources") o.sources = std::stoi(v);
      else if (a == "--pid") o.pid = std::stoi(v);
      else if (a == "--hold") o.hold = std::stod(v);
      else if (a == "--settle") o.settle = std::stod(v);
      else if (a == "--timeout") o.timeout = std::stod(v);
      else {
        std::fprintf(stderr, "loadgen: unknown option %s\n", a.c_str());
        usage(2);
      }
    } catch (const std::exception&) {
      std::fprintf(stderr, "loadgen: bad value for %s: %s\n", a.c_str(), v.c_str());
      usage(2);
    }
  }
  if (o.mode != "echo" && o.mode != "fanout" && o.mode != "connect") usage(2);
  if (o.connections < 1 || o.inflight < 1 || o.handshake_concurrency < 1 || o.publishers < 1 || o.rooms < 1) usage(2);

  if (o.wrap != "auto" && o.wrap != "text" && o.wrap != "json") usage(2);
  // ws://host:port/path
  std::string_view u = o.url;
  if (u.substr(0, 5) != "ws://") {
    std::fprintf(stderr, "loadgen: --url must start with ws://\n");
    std::exit(2);
  }
  u.remove_prefix(5);
  auto slash = u.find('/');
  std::string_view hostport = u.substr(0, slash);
  o.path = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
  auto colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    o.host = std::string(hostport);
    o.port = "80";
  } else {
    o.host = std::string(hostport.substr(0, colon));
    o.port = std::string(hostport.substr(colon + 1));
  }
  for (const auto& extra : o.also_urls) {
    if (extra.rfind("ws://", 0) != 0 || extra.find('/', 5) == std::string::npos ||
        extra.substr(extra.find('/', 5)) != o.path) {
      std::fprintf(stderr, "loadgen: --also-url %s must be ws://HOST:PORT with --url's path (%s)\n", extra.c_str(),
                   o.path.c_str());
      std::exit(2);
    }
  }
  if (o.rooms > 1 && o.path.find("{room}") == std::string::npos) {
    std::fprintf(stderr, "loadgen: --rooms needs {room} in the url's path\n");
    std::exit(2);
  }
  if (o.wrap == "auto") o.wrap = o.path.find("/chat/") != std::string::npos ? "json" : "text";
  if (o.sources <= 0) o.sources = 1 + (o.connections + 1) / 20000;
  if (o.sources > 254) o.sources = 254;
  if (o.timeout <= 0) {
    double setup = 30 + o.connections / 200.0;  // handshakes, even on a slow server
    if (o.mode == "echo") o.timeout = setup + o.warmup + o.duration + 10;
    else if (o.mode == "fanout") o.timeout = setup + o.duration + o.drain + 10;
    else o.timeout = setup + o.settle + o.hold + 10;
  }
  return o;
}

// ---------------------------------------------------------------- stats

struct Summary {
  double p50 = 0, p99 = 0, max = 0;
};

// Percentiles of samples in microseconds (the vector is reordered).
template <class T>
Summary summarize(std::vector<T>& v) {
  Summary s;
  if (v.empty()) return s;
  auto at = [&](double q) {
    std::size_t k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]);
  };
  s.p50 = at(0.50);
  s.p99 = at(0.99);
  s.max = static_cast<double>(*std::max_element(v.begin(), v.end()));
  return s;
}

std::string summary_json(const Summary& s) {
  char b[160];
  std::snprintf(b, sizeof b, "{\"p50\": %.1f, \"p99\": %.1f, \"max\": %.1f}", s.p50, s.p99, s.max);
  return b;
}

long vm_rss_kb(int pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

// Time the process's threads have spent on a CPU, in seconds, summed from
// /proc/<pid>/task/*/schedstat (nanoseconds; user and system alike), or -1
// if the kernel keeps none. /proc/<pid>/stat counts clock ticks of 10 ms: a
// 200-message burst in a room of 1,000 costs cppchannels 4 or 5 of them, so
// its CPU per delivery moved by a quarter with where the ticks fell. A thread
// that exits between two readings takes its time with it: the servers
// measured here keep theirs.
double sched_cpu_s(int pid) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return -1;
  std::uint64_t ns = 0;
  bool any = false;
  for (const auto& task : tasks) {
    std::ifstream in(task.path() / "schedstat");
    std::uint64_t on_cpu;
    if (in >> on_cpu) {
      ns += on_cpu;
      any = true;
    }
  }
  return any ? static_cast<double>(ns) / 1e9 : -1;
}

// CPU time (user + system) the process has used, in seconds; -1 without --pid.
double proc_cpu_s(int pid) {
  if (pid <= 0) return -1;
  if (double s = sched_cpu_s(pid); s >= 0) return s;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return -1;
  // Fields after the command: state is field 3; utime and stime are 14 and 15.
  const char* p = stat.c_str() + paren + 2;
  double utime = 0, stime = 0;
  for (int field = 3; field <= 15 && *p; ++field) {
    char* end;
    double v = std::strtod(p, &end);
    if (field == 14) utime = v;
    if (field == 15) stime = v;
    p = end;
    while (*p == ' ') ++p;
    if (field == 3) {  // the state is a letter, not a number
      while (*p && *p != ' ') ++p;
      while (*p == ' ') ++p;
    }
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out += c;
    }
  }
  return out;
}

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
Clock::duration dur(double s) { return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s)); }

// ---------------------------------------------------------------- connections

enum Op : std::uint8_t { op_cont = 0, op_text = 1, op_binary = 2, op_close = 8, op_ping = 9, op_pong = 10 };

class Driver;

// One client WebSocket connection.
class Conn {
 public:
  Conn(net::io_context& ioc, Driver& d, int index) : sock_(ioc), d_(d), index_(index) {
    rng_ = 0x9E3779B9u ^ static_cast<std::uint32_t>(index * 2654435761u);
    if (!rng_) rng_ = 1;
  }

  void start(const tcp::endpoint& server, int sources);
  bool open() const { return open_; }
  int index() const { return index_; }

  // Queues one masked frame; it goes out with the next write.
  void queue_frame(Op op, std::string_view payload) {
    std::size_t n = payload.size();
    std::size_t at = out_.size();
    std::size_t hdr = 2 + 4 + (n < 126 ? 0 : n < 65536 ? 2 : 8);
    out_.resize(at + hdr + n);
    auto* p = reinterpret_cast<unsigned char*>(out_.data() + at);
    *p++ = static_cast<unsigned char>(0x80 | op);
    if (n < 126) {
      *p++ = static_cast<unsigned char>(0x80 | n);
    } else if (n < 65536) {
      *p++ = 0x80 | 126;
      *p++ = static_cast<unsigned char>(n >> 8);
      *p++ = static_cast<unsigned char>(n);
    } else {
      *p++ = 0x80 | 127;
      for (int s = 56; s >= 0; s -= 8) *p++ = static_cast<unsigned char>(n >> s);
    }
    // xorshift32: a fresh mask per frame, cheaply.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 17;
    rng_ ^= rng_ << 5;
    unsigned char mask[4];
    std::memcpy(mask, &rng_, 4);
    std::memcpy(p, mask, 4);
    p += 4;
    const auto* src = reinterpret_cast<const unsigned char*>(payload.data());
    for (std::size_t i = 0; i < n; ++i) p[i] = src[i] ^ mask[i & 3];
  }

  // Starts a write of everything queued, unless one is in progress (its
  // completion writes what was queued meanwhile: one write per batch).
  void flush() {
    if (writing_ || out_.empty() || dead_ || in_parse_) return;
    writing_ = true;
    std::swap(out_, wbuf_);
    net::async_write(sock_, net::buffer(wbuf_), [this](error_code ec, std::size_t) {
      writing_ = false;
      wbuf_.clear();
      if (ec) return fail(ec, "write");
      on_written();
      flush();
    });
  }

  std::size_t queued_bytes() const { return out_.size() + wbuf_.size(); }
  bool writing() const { return writing_; }

  // Echo bookkeeping: send times of the messages in flight, oldest first.
  std::deque<Clock::time_point> sent_at;
  std::uint64_t received = 0;

  void close_now() {
    dead_ = true;
    error_code ec;
    sock_.close(ec);
  }

 private:
  void on_connected(error_code ec);
  void read_handshake();
  void read();
  void parse();
  void frame(Op op, bool fin, char* data, std::size_t n);
  void fail(error_code ec, const char* what);
  void on_written();

  tcp::socket sock_;
  Driver& d_;
  int index_;
  std::uint32_t rng_;
  std::vector<char> rbuf_ = std::vector<char>(16 * 1024);
  std::size_t rlen_ = 0;
  std::string out_, wbuf_;
  std::string frag_;
  Op frag_op_ = op_text;
  bool writing_ = false;
  bool open_ = false;
  bool dead_ = false;
  bool in_parse_ = false;
  bool close_sent_ = false;
};

// What a mode does with its connections.
class Driver {
 public:
  Driver(net::io_context& ioc, Options o) : ioc_(ioc), opt_(std::move(o)), deadline_(ioc) {}
  virtual ~Driver() = default;

  // Connects `n` connections, at most --handshake-concurrency at a time,
  // then calls all_open() (or gives up at the deadline).
  void connect_all(int n) {
    tcp::resolver resolver(ioc_);
    auto results = resolver.resolve(opt_.host, opt_.port);
    endpoint_ = *results.begin();
    servers_.push_back({endpoint_, opt_.host + ":" + opt_.port});
    for (const auto& extra : opt_.also_urls) {
      std::string hostport = extra.substr(5, extra.find('/', 5) - 5);
      auto colon = hostport.rfind(':');
      std::string host = hostport.substr(0, colon), port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
      servers_.push_back({*resolver.resolve(host, port).begin(), host + ":" + port});
    }
    target_ = n;
    conns_.reserve(static_cast<std::size_t>(n));
    connect_started_ = Clock::now();
    handshake_us_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < std::min(n, opt_.handshake_concurrency); ++i) start_next();
  }

  void start_next() {
    if (started_ >= target_) return;
    int i = started_++;
    conns_.push_back(std::make_unique<Conn>(ioc_, *this, i));
    started_at_.push_back(Clock::now());
    conns_.back()->start(server_for(i).endpoint, opt_.sources);
  }

  void handshake_done(Conn& c, bool ok) {
    if (ok) {
      ++opened_;
      handshake_us_.push_back(static_cast<std::uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_at_[c.index()]).count()));
    } else {
      ++failed_;
    }
    if (opened_ + failed_ == target_) {
      all_open_at_ = Clock::now();
      all_open();
    } else {
      start_next();
    }
  }

  void set_deadline() {
    deadline_.expires_after(dur(opt_.timeout));
    deadline_.async_wait([this](error_code ec) {
      if (ec) return;
      timed_out_ = true;
      std::fprintf(stderr, "loadgen: the run hit its --timeout of %.0f s\n", opt_.timeout);
      finish();
    });
  }

  virtual void begin() = 0;
  virtual void all_open() = 0;
  virtual void on_message(Conn& c, Op op, std::string_view payload) = 0;
  virtual void on_written(Conn&) {}
  virtual void on_closed(Conn& c, const char* why) {
    if (c.open()) ++closed_;
    if (!reported_close_) {
      reported_close_ = true;
      std::fprintf(stderr, "loadgen: connection %d lost: %s\n", c.index(), why);
    }
  }
  virtual std::string result_json() = 0;

  // Prints the result and stops.
  void finish() {
    if (finished_) return;
    finished_ = true;
    std::string r = result_json();
    std::fprintf(stdout, "%s\n", r.c_str());
    std::fflush(stdout);
    deadline_.cancel();
    for (auto& c : conns_) c->close_now();
    ioc_.stop();
  }

  bool ok() const { return ok_ && !timed_out_; }

  // The server of connection i (--url, then each --also-url in turn).
  struct Server {
    tcp::endpoint endpoint;
    std::string host_port;  // for the Host and Origin headers
  };
  const Server& server_for(int i) const { return servers_[static_cast<std::size_t>(i) % servers_.size()]; }

  // The request path of connection i: with --rooms, {room} is i % rooms.
  std::string path_for(int i) const {
    std::string p = opt_.path;
    if (auto at = p.find("{room}"); at != std::string::npos) p.replace(at, 6, std::to_string(i % opt_.rooms));
    return p;
  }
  const Options& opt() const { return opt_; }

  // The server's CPU time over the measured phase, per operation (message
  // echoed, message delivered, handshake): unlike rates, barely disturbed by
  // other processes sharing the machine.
  void cpu_begin() { cpu_start_ = proc_cpu_s(opt_.pid); }
  void cpu_end(std::uint64_t ops) {
    double now = proc_cpu_s(opt_.pid);
    if (cpu_start_ < 0 || now < 0 || cpu_ended_) return;
    cpu_ended_ = true;
    cpu_s_ = now - cpu_start_;
    cpu_ops_ = ops;
  }

  std::string common_json() {
    char cpu[160] = "";
    if (cpu_ended_)
      std::snprintf(cpu, sizeof cpu, ", \"server_cpu_s\": %.4f, \"server_cpu_us_per_op\": %.3f", cpu_s_,
                    cpu_ops_ ? cpu_s_ * 1e6 / static_cast<double>(cpu_ops_) : 0.0);
    char b[768];
    std::snprintf(b, sizeof b,
                  "\"mode\": \"%s\", \"url\": \"%s\", \"connections\": %d, \"connected\": %d, "
                  "\"connect_failed\": %d, \"closed_by_server\": %d, \"timed_out\": %s%s",
                  opt_.mode.c_str(), json_escape(opt_.url).c_str(), target_, opened_, failed_, closed_,
                  timed_out_ ? "true" : "false", cpu);
    return b;
  }

 protected:
  net::io_context& ioc_;
  Options opt_;
  net::steady_timer deadline_;
  tcp::endpoint endpoint_;
  std::vector<Server> servers_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Clock::time_point> started_at_;
  std::vector<std::uint32_t> handshake_us_;
  Clock::time_point connect_started_, all_open_at_;
  int target_ = 0, started_ = 0, opened_ = 0, failed_ = 0, closed_ = 0;
  bool timed_out_ = false, finished_ = false, reported_close_ = false;
  bool ok_ = true;
  double cpu_start_ = -1, cpu_s_ = 0;
  std::uint64_t cpu_ops_ = 0;
  bool cpu_ended_ = false;
};

void Conn::start(const tcp::endpoint& server, int sources) {
  error_code ec;
  sock_.open(server.protocol(), ec);
  if (!ec && sources > 1 && server.address().is_loopback() && server.address().is_v4()) {
    // Spread over 127.0.0.1..N so that no source runs out of ephemeral
    // ports; the port is picked at connect() time, per destination.
    int one = 1;
    ::setsockopt(sock_.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    auto addr = net::ip::address_v4((127u << 24) | static_cast<unsigned>(1 + index_ % sources));
    sock_.bind(tcp::endpoint(addr, 0), ec);
  }
  if (ec) return fail(ec, "open");
  sock_.async_connect(server, [this](error_code ec) { on_connected(ec); });
}

void Conn::on_connected(error_code ec) {
  if (ec) return fail(ec, "connect");
  sock_.set_option(tcp::no_delay(true), ec);
  const auto& host = d_.server_for(index_).host_port;
  out_ = "GET " + d_.path_for(index_) + " HTTP/1.1\r\nHost: " + host +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Origin: http://" + host + "\r\n\r\n";
  flush();
  read_handshake();
}

void Conn::read_handshake() {
  sock_.async_read_some(net::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_), [this](error_code ec, std::size_t n) {
    if (ec) return fail(ec, "handshake");
    rlen_ += n;
    std::string_view got(rbuf_.data(), rlen_);
    auto end = got.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (rlen_ == rbuf_.size()) return fail({}, "handshake: response too long");
      return read_handshake();
    }
    if (got.substr(0, 12) != "HTTP/1.1 101") {
      auto eol = got.find("\r\n");
      std::string status(got.substr(0, eol));
      return fail({}, ("handshake refused: " + status).c_str());
    }
    std::size_t rest = rlen_ - (end + 4);
    std::memmove(rbuf_.data(), rbuf_.data() + end + 4, rest);
    rlen_ = rest;
    open_ = true;
    d_.handshake_done(*this, true);
    parse();
    if (!dead_) read();
  });
}

void Conn::read() {
  if (rbuf_.size() - rlen_ < 4096) rbuf_.resize(rbuf_.size() * 2);
  sock_.async_read_some(net::buffer(rbuf_.data() + rlen_, rbuf_.size() - rlen_), [this](error_code ec, std::size_t n) {
    if (ec) return fail(ec, "read");
    rlen_ += n;
    parse();
    if (!dead_) read();
  });
}

// Handles every complete frame in the buffer, then writes what they queued
// in one go.
void Conn::parse() {
  in_parse_ = true;
  std::size_t pos = 0;
  auto* b = reinterpret_cast<unsigned char*>(rbuf_.data());
  while (!dead_ && rlen_ - pos >= 2) {
    bool fin = b[pos] & 0x80;
    auto op = static_cast<Op>(b[pos] & 0x0f);
    bool masked = b[pos + 1] & 0x80;
    std::uint64_t len = b[pos + 1] & 0x7f;
    std::size_t hdr = 2;
    if (len == 126) {
      if (rlen_ - pos < 4) break;
      len = (std::uint64_t{b[pos + 2]} << 8) | b[pos + 3];
      hdr = 4;
    } else if (len == 127) {
      if (rlen_ - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b[pos + 2 + i];
      hdr = 10;
    }
    if (masked) hdr += 4;
    if (rlen_ - pos < hdr + len) {
      if (hdr + len > rbuf_.size()) {
        rbuf_.resize(hdr + len + 4096);
        b = reinterpret_cast<unsigned char*>(rbuf_.data());
      }
      break;
    }
    char* data = rbuf_.data() + pos + hdr;
    if (masked)
      for (std::uint64_t i = 0; i < len; ++i) data[i] ^= static_cast<char>(b[pos + hdr - 4 + (i & 3)]);
    frame(op, fin, data, len);
    pos += hdr + len;
  }
  if (pos) {
    std::memmove(rbuf_.data(), rbuf_.data() + pos, rlen_ - pos);
    rlen_ -= pos;
  }
  in_parse_ = false;
  flush();
}

void Conn::frame(Op op, bool fin, char* data, std::size_t n) {
  std::string_view payload(data, n);
  switch (op) {
    case op_text:
    case op_binary:
      if (fin) {
        d_.on_message(*this, op, payload);
      } else {
        frag_op_ = op;
        frag_.assign(payload);
      }
      break;
    case op_cont:
      frag_.append(payload);
      if (fin) {
        d_.on_message(*this, frag_op_, frag_);
        frag_.clear();
      }
      break;
    case op_ping:
      queue_frame(op_pong, payload);
      break;
    case op_pong:
      break;
    case op_close: {
      if (!close_sent_) {
        close_sent_ = true;
        queue_frame(op_close, payload.substr(0, std::min<std::size_t>(payload.size(), 2)));
      }
      std::string why = "close frame";
      if (n >= 2)
        why += " " + std::to_string((static_cast<unsigned char>(data[0]) << 8) | static_cast<unsigned char>(data[1]));
      if (n > 2) why += " " + std::string(payload.substr(2));
      in_parse_ = false;
      flush();
      d_.on_closed(*this, why.c_str());
      open_ = false;
      dead_ = true;  // the socket closes when the run ends
      break;
    }
    default:
      fail({}, "bad opcode from server");
  }
}

void Conn::fail(error_code ec, const char* what) {
  if (dead_) return;
  bool was_open = open_;
  dead_ = true;
  std::string why = what;
  if (ec) why += ": " + ec.message();
  if (!was_open) {
    static int shown = 0;
    if (shown++ < 3) std::fprintf(stderr, "loadgen: connection %d failed: %s\n", index_, why.c_str());
    d_.handshake_done(*this, false);
  } else {
    d_.on_closed(*this, why.c_str());
    open_ = false;
  }
  error_code ignore;
  sock_.close(ignore);
}

void Conn::on_written() { d_.on_written(*this); }


// ---------------------------------------------------------------- echo

class Echo final : public Driver {
 public:
  using Driver::Driver;

  void begin() override {
    payload_.assign(opt_.size, 'x');
    set_deadline();
    connect_all(opt_.connections);
  }

  void all_open() override {
    if (opened_ == 0) return finish();
    samples_.reserve(1 << 20);
    start_ = Clock::now();
    measure_from_ = start_ + dur(opt_.warmup);
    measure_to_ = measure_from_ + dur(opt_.duration);
    for (auto& c : conns_) {
      if (!c->open()) continue;
      for (int k = 0; k < opt_.inflight; ++k) send(*c);
      c->flush();
    }
    warm_timer_.emplace(ioc_);
    warm_timer_->expires_at(measure_from_);
    warm_timer_->async_wait([this](error_code ec) {
      if (!ec) cpu_begin();
    });
    stop_timer_.emplace(ioc_);
    stop_timer_->expires_at(measure_to_);
    stop_timer_->async_wait([this](error_code ec) {
      if (ec) return;
      cpu_end(measured_);
      sending_ = false;
      // What is still in flight has 2 s to come back; then the run ends.
      stop_timer_->expires_after(std::chrono::seconds(2));
      stop_timer_->async_wait([this](error_code ec) {
        if (!ec) finish();
      });
      maybe_done();
    });
  }

  void send(Conn& c) {
    if (opt_.count && sent_ >= opt_.count) {
      sending_ = false;
      return;
    }
    ++sent_;
    c.sent_at.push_back(Clock::now());
    c.queue_frame(op_text, payload_);
  }

  void on_message(Conn& c, Op, std::string_view payload) override {
    auto now = Clock::now();
    if (c.sent_at.empty()) {
      ++unexpected_;
      return;
    }
    if (payload.size() != opt_.size) ++wrong_size_;
    auto t = c.sent_at.front();
    c.sent_at.pop_front();
    ++received_;
    if (t >= measure_from_ && now <= measure_to_) {
      ++measured_;
      samples_.push_back(static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - t).count()));
    }
    if (sending_ && now < measure_to_) send(c);
    else maybe_done();
  }

  void on_closed(Conn& c, const char* why) override {
    Driver::on_closed(c, why);
    in_flight_lost_ += c.sent_at.size();
    c.sent_at.clear();
    maybe_done();
  }

  void maybe_done() {
    if (sending_ && Clock::now() < measure_to_) return;
    for (auto& c : conns_)
      if (c->open() && !c->sent_at.empty()) return;
    finish();
  }

  std::string result_json() override {
    cpu_end(measured_);  // if the last echo came back before the stop timer ran
    // The measured window: shorter than --duration when --count ended it.
    double window = std::max(0.0, seconds(std::min(Clock::now(), measure_to_) - measure_from_));
    auto s = summarize(samples_);
    std::uint64_t unanswered = in_flight_lost_;
    for (auto& c : conns_) unanswered += c->sent_at.size();
    char b[1024];
    std::snprintf(b, sizeof b,
                  "{%s, \"inflight\": %d, \"size\": %zu, \"warmup_s\": %.2f, \"duration_s\": %.2f, "
                  "\"sent\": %" PRIu64 ", \"received\": %" PRIu64 ", \"measured\": %" PRIu64
                  ", \"unanswered\": %" PRIu64 ", \"wrong_size\": %" PRIu64
                  ", \"msgs_per_s\": %.1f, \"rtt_us\": %s}",
                  common_json().c_str(), opt_.inflight, opt_.size, opt_.warmup, window, sent_, received_, measured_,
                  unanswered, wrong_size_, window > 0 ? static_cast<double>(measured_) / window : 0.0,
                  summary_json(s).c_str());
    ok_ = opened_ == target_ && measured_ > 0 && closed_ == 0 && wrong_size_ == 0;
    return b;
  }

 private:
  std::string payload_;
  std::optional<net::steady_timer> warm_timer_, stop_timer_;
  Clock::time_point start_, measure_from_, measure_to_;
  bool sending_ = true;
  std::uint64_t sent_ = 0, received_ = 0, measured_ = 0, unexpected_ = 0, wrong_size_ = 0, in_flight_lost_ = 0;
  std::vector<std::uint32_t> samples_;
};

// ---------------------------------------------------------------- fanout

class Fanout final : public Driver {
 public:
  using Driver::Driver;

  void begin() override {
    set_deadline();
    if (opt_.rooms > 1)
      connect_all(opt_.rooms * opt_.connections);  // connection i is in room i % rooms; i < rooms publish
    else
      connect_all(opt_.connections + opt_.publishers);  // the last ones publish
  }

  void all_open() override {
    if (opened_ != target_) {
      std::fprintf(stderr, "loadgen: only %d of %d connections opened\n", opened_, target_);
      return finish();
    }
    if (opt_.rooms > 1) {
      // Every connection is counted, the publishers too (each is a member of its room).
      members_ = opt_.connections;
      for (int i = 0; i < opt_.rooms; ++i) publishers_.push_back(conns_[static_cast<std::size_t>(i)].get());
    } else {
      members_ = opt_.connections;
      for (int i = members_; i < target_; ++i) publishers_.push_back(conns_[static_cast<std::size_t>(i)].get());
    }
    pub_sent_.assign(publishers_.size(), 0);
    latencies_.reserve(std::min<std::uint64_t>(opt_.count ? opt_.count * members_ : 1u << 22, 1u << 26));
    // A moment for the server to finish joining the last members (--join-wait).
    timer_.emplace(ioc_);
    timer_->expires_after(dur(opt_.join_wait));
    timer_->async_wait([this](error_code ec) {
      if (ec) return;
      t0_ = Clock::now();
      cpu_begin();
      publish_until_ = t0_ + dur(opt_.duration);
      publishing_started_ = true;
      if (opt_.rate > 0) return publish_paced();
      for (auto* p : publishers_) publish(*p);
    });
  }

  bool publishing_over() {
    if ((opt_.count && sent_ >= opt_.count) || Clock::now() >= publish_until_) {
      end_publishing();
      return true;
    }
    return publishing_done_;
  }

  // As fast as the server reads: 64 messages per write, and the next batch
  // when that write completes, so the socket's buffer paces each publisher.
  // With --count, each publisher sends its share of it.
  void publish(Conn& pub) {
    if (publishing_over() || !pub.open()) return;
    std::uint64_t batch = 64;
    std::size_t k = publisher_number(pub);
    if (opt_.count) {
      std::uint64_t share = (opt_.count + publishers_.size() - 1) / publishers_.size();
      batch = std::min({batch, opt_.count - sent_, share > pub_sent_[k] ? share - pub_sent_[k] : 0});
    }
    pub_sent_[k] += batch;
    for (std::uint64_t j = 0; j < batch; ++j) pub.queue_frame(op_text, make_payload(sent_++));
    pub.flush();
    if (opt_.count && sent_ >= opt_.count) end_publishing();
  }

  std::size_t publisher_number(const Conn& c) const {
    return opt_.rooms > 1 ? static_cast<std::size_t>(c.index()) : static_cast<std::size_t>(c.index() - members_);
  }

  // --rate R: what is due every 100 us or more, round robin over publishers.
  void publish_paced() {
    if (publishing_over()) return;
    auto due = static_cast<std::uint64_t>(seconds(Clock::now() - t0_) * opt_.rate) + 1;
    std::uint64_t batch = due > sent_ ? due - sent_ : 0;
    if (opt_.count) batch = std::min(batch, opt_.count - sent_);
    for (std::uint64_t k = 0; k < batch; ++k) {
      Conn& pub = *publishers_[next_pub_++ % publishers_.size()];
      if (pub.open()) pub.queue_frame(op_text, make_payload(sent_++));
    }
    for (auto* p : publishers_) p->flush();
    timer_->expires_after(std::chrono::microseconds(std::max(100, static_cast<int>(1e6 / opt_.rate))));
    timer_->async_wait([this](error_code ec) {
      if (!ec) publish_paced();
    });
  }

  bool is_publisher(const Conn& c) const {
    return opt_.rooms > 1 ? c.index() < opt_.rooms : c.index() >= members_;
  }
  // Whose deliveries count: every member of every room with --rooms; else
  // the members that do not publish.
  bool counted(const Conn& c) const { return opt_.rooms > 1 || c.index() < members_; }

  void on_written(Conn& c) override {
    // (The handshake's request is a write too: nothing to do before publishing starts.)
    if (publishing_started_ && is_publisher(c) && opt_.rate <= 0 && !publishing_done_) publish(c);
  }

  void end_publishing() {
    if (publishing_done_) return;
    publishing_done_ = true;
    last_send_ = Clock::now();
    last_delivery_ = last_send_;
    drain_check();
  }

  // Ends the run when every delivery arrived, after --idle-drain without
  // one, or after --drain.
  void drain_check() {
    auto now = Clock::now();
    std::uint64_t expected = sent_ * static_cast<std::uint64_t>(members_);
    if (received_ >= expected) drain_end_ = "complete";
    else if (now - last_delivery_ > dur(opt_.idle_drain)) drain_end_ = "idle";
    else if (now - last_send_ > dur(opt_.drain)) drain_end_ = "cap";  // still delivering: "lost" overstates
    if (drain_end_) {
      cpu_end(received_ + publisher_received_);
      return finish();
    }
    timer_->expires_after(std::chrono::milliseconds(50));
    timer_->async_wait([this](error_code ec) {
      if (!ec) drain_check();
    });
  }

  std::string make_payload(std::uint64_t id) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - epoch_).count();
    char head[64];
    int n = std::snprintf(head, sizeof head, "i=%" PRIu64 " t=%" PRId64 " ", id, static_cast<std::int64_t>(us));
    std::string body(head, static_cast<std::size_t>(n));
    if (body.size() < opt_.size) body.append(opt_.size - body.size(), 'x');
    if (opt_.wrap == "json") return "{\"message\": \"" + body + "\"}";
    return body;
  }

  // Finds "i=<id> t=<us>" in whatever the server wrapped the payload in.
  static bool find_stamp(std::string_view s, std::uint64_t& id, std::int64_t& us) {
    auto p = s.find("i=");
    if (p == std::string_view::npos) return false;
    const char* c = s.data() + p + 2;
    const char* end = s.data() + s.size();
    id = 0;
    if (c >= end || *c < '0' || *c > '9') return false;
    while (c < end && *c >= '0' && *c <= '9') id = id * 10 + static_cast<std::uint64_t>(*c++ - '0');
    if (end - c < 3 || c[0] != ' ' || c[1] != 't' || c[2] != '=') return false;
    c += 3;
    us = 0;
    while (c < end && *c >= '0' && *c <= '9') us = us * 10 + (*c++ - '0');
    return true;
  }

  void on_message(Conn& c, Op, std::string_view payload) override {
    std::uint64_t id;
    std::int64_t us;
    if (!find_stamp(payload, id, us)) {
      if (!bad_shown_++) std::fprintf(stderr, "loadgen: unexpected message: %.*s\n", static_cast<int>(std::min<std::size_t>(payload.size(), 200)), payload.data());
      ++unparsed_;
      return;
    }
    if (!counted(c)) {
      ++publisher_received_;
      return;
    }
    auto now = Clock::now();
    last_delivery_ = now;
    if (!first_delivery_) first_delivery_ = now;
    ++received_;
    auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now - epoch_).count();
    if (latencies_.size() < (1u << 26))  // 256 MiB of samples at most
      latencies_.push_back(static_cast<std::uint32_t>(std::max<std::int64_t>(0, now_us - us)));
  }

  std::string result_json() override {
    std::uint64_t expected = sent_ * static_cast<std::uint64_t>(members_);
    auto s = summarize(latencies_);
    double publish_s = seconds((publishing_done_ ? last_send_ : Clock::now()) - t0_);
    double span = seconds(last_delivery_ - t0_);
    std::uint64_t lost = expected > received_ ? expected - received_ : 0;
    char b[1280];
    std::snprintf(b, sizeof b,
                  "{%s, \"rooms\": %d, \"members\": %d, \"publishers\": %d, \"size\": %zu, \"wrap\": \"%s\", \"rate\": %.1f, \"sent\": %" PRIu64
                  ", \"publish_s\": %.3f, \"publish_per_s\": %.1f, \"expected\": %" PRIu64 ", \"received\": %" PRIu64
                  ", \"lost\": %" PRIu64 ", \"loss_pct\": %.3f, \"publisher_received\": %" PRIu64
                  ", \"unparsed\": %" PRIu64 ", \"drain_end\": \"%s\", \"delivery_span_s\": %.3f, "
                  "\"deliveries_per_s\": %.1f, "
                  "\"latency_us\": %s}",
                  common_json().c_str(), opt_.rooms, members_, static_cast<int>(publishers_.size()), opt_.size, opt_.wrap.c_str(), opt_.rate, sent_, publish_s,
                  publish_s > 0 ? static_cast<double>(sent_) / publish_s : 0.0, expected, received_, lost,
                  expected ? 100.0 * static_cast<double>(lost) / static_cast<double>(expected) : 0.0,
                  publisher_received_, unparsed_, drain_end_ ? drain_end_ : "none", span, span > 0 ? static_cast<double>(received_) / span : 0.0,
                  summary_json(s).c_str());
    ok_ = opened_ == target_ && received_ > 0 && unparsed_ == 0;
    return b;
  }

 private:
  Clock::time_point epoch_ = Clock::now();
  std::vector<Conn*> publishers_;
  std::vector<std::uint64_t> pub_sent_;
  std::size_t next_pub_ = 0;
  int members_ = 0;
  std::optional<net::steady_timer> timer_;
  Clock::time_point t0_, publish_until_, last_send_, last_delivery_;
  std::optional<Clock::time_point> first_delivery_;
  bool publishing_started_ = false, publishing_done_ = false;
  const char* drain_end_ = nullptr;  // why the drain ended: complete, idle or cap
  std::uint64_t sent_ = 0, received_ = 0, publisher_received_ = 0, unparsed_ = 0;
  int bad_shown_ = 0;
  std::vector<std::uint32_t> latencies_;
};

// ---------------------------------------------------------------- connect

class Connect final : public Driver {
 public:
  using Driver::Driver;

  void begin() override {
    rss_base_ = vm_rss_kb(opt_.pid);
    cpu_begin();
    set_deadline();
    connect_all(opt_.connections);
  }

  void all_open() override {
    connect_s_ = seconds(all_open_at_ - connect_started_);
    cpu_end(static_cast<std::uint64_t>(opened_));
    timer_.emplace(ioc_);
    timer_->expires_after(dur(opt_.settle));
    timer_->async_wait([this](error_code ec) {
      if (ec) return;
      rss_held_ = vm_rss_kb(opt_.pid);
      held_open_ = count_open();
      // Signals the runner that the connections are held (it may read more).
      std::fprintf(stderr, "loadgen: holding %d connections\n", held_open_);
      timer_->expires_after(dur(opt_.hold));
      timer_->async_wait([this](error_code ec) {
        if (ec) return;
        rss_end_ = vm_rss_kb(opt_.pid);
        still_open_ = count_open();
        finish();
      });
    });
  }

  int count_open() const {
    int n = 0;
    for (auto& c : conns_) n += c->open();
    return n;
  }

  void on_message(Conn&, Op, std::string_view) override { ++unexpected_; }

  std::string result_json() override {
    auto s = summarize(handshake_us_);
    long held = std::max(rss_held_, rss_end_);
    double per_conn = (rss_base_ > 0 && held > 0 && held_open_ > 0)
                          ? static_cast<double>(held - rss_base_) * 1024.0 / held_open_
                          : -1;
    char b[1024];
    std::snprintf(b, sizeof b,
                  "{%s, \"sources\": %d, \"connect_s\": %.3f, \"handshakes_per_s\": %.1f, \"handshake_us\": %s, "
                  "\"held\": %d, \"still_open\": %d, \"pid\": %d, \"rss_base_kb\": %ld, \"rss_held_kb\": %ld, "
                  "\"rss_end_kb\": %ld, \"rss_bytes_per_conn\": %.0f}",
                  common_json().c_str(), opt_.sources, connect_s_, connect_s_ > 0 ? opened_ / connect_s_ : 0.0,
                  summary_json(s).c_str(), held_open_, still_open_, opt_.pid, rss_base_, rss_held_, rss_end_,
                  per_conn);
    ok_ = opened_ == target_ && still_open_ == target_;
    return b;
  }

 private:
  std::optional<net::steady_timer> timer_;
  double connect_s_ = 0;
  long rss_base_ = -1, rss_held_ = -1, rss_end_ = -1;
  int held_open_ = 0, still_open_ = 0;
  std::uint64_t unexpected_ = 0;
};

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  raise_fd_limit();
  net::io_context ioc(1);
  std::unique_ptr<Driver> d;
  if (o.mode == "echo") d = std::make_unique<Echo>(ioc, o);
  else if (o.mode == "fanout") d = std::make_unique<Fanout>(ioc, o);
  else d = std::make_unique<Connect>(ioc, o);
  try {
    d->begin();
    ioc.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
  return d->ok() ? 0 : 1;
}
