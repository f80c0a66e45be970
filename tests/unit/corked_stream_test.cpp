// The write queue under every WebSocket session, over a real loopback TCP
// connection: frames arrive whole and in order, the buffer small frames are
// copied into goes back to the thread once they are written (and the next
// connection's burst reuses it), and shrink() gives back the rest without
// touching a write that is still in progress.

#include "corked_stream.hpp"
#include "server_stream.hpp"
#include "write_buffer_pool.hpp"

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core/tcp_stream.hpp>

using channels::detail::CorkedStream;
using channels::detail::ServerStream;
using channels::detail::WriteBufferPool;
using boost::asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

struct Connection {
  explicit Connection(boost::asio::io_context& io) : client(io), out(accept(io, client)) {}

  static ServerStream accept(boost::asio::io_context& io, tcp::socket& client) {
    tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    ServerStream s(boost::beast::tcp_stream(acceptor.accept()));
    s.drop_timeouts();  // as a WebSocket session does
    return s;
  }

  tcp::socket client;
  CorkedStream<ServerStream> out;
};

std::string payload(int n, std::size_t size) {
  std::string p = std::to_string(n) + ":";
  p.resize(size, static_cast<char>('a' + n % 26));
  return p;
}

std::size_t wire_size(std::size_t payload) { return payload + (payload < 126 ? 2 : 4); }

// Reads `frames` unmasked text frames (payloads under 64 KiB) on `client`.
std::vector<std::string> read_frames(tcp::socket& client, std::size_t frames) {
  std::vector<std::string> got;
  for (std::size_t i = 0; i < frames; ++i) {
    unsigned char h[4];
    boost::asio::read(client, boost::asio::buffer(h, 2));
    if (h[0] != 0x81) throw std::runtime_error("frame " + std::to_string(i) + ": not a final text frame");
    std::size_t size = h[1] & 0x7f;
    if (size == 126) {
      boost::asio::read(client, boost::asio::buffer(h + 2, 2));
      size = std::size_t(h[2]) << 8 | h[3];
    }
    std::string p(size, '\0');
    boost::asio::read(client, boost::asio::buffer(p));
    got.push_back(std::move(p));
  }
  return got;
}

// read_frames() on a thread of its own, while the test runs the server's loop.
class Reader {
 public:
  Reader(tcp::socket& client, std::size_t frames)
      : client_(client), thread_([this, &client, frames] {
          try {
            frames_ = read_frames(client, frames);
          } catch (const std::exception& e) {
            error_ = e.what();
          }
          done_ = true;
        }) {}
  bool done() const { return done_; }
  std::vector<std::string> join() {
    if (!done_) {
      // Failing: unblock the read rather than wait forever.
      boost::system::error_code ec;
      client_.shutdown(tcp::socket::shutdown_both, ec);
    }
    thread_.join();
    EXPECT_EQ(error_, "");
    return std::move(frames_);
  }

 private:
  std::vector<std::string> frames_;
  std::string error_;
  std::atomic<bool> done_{false};
  tcp::socket& client_;
  std::thread thread_;  // last: starts once the rest is constructed
};

// Runs `io` until `done` holds (or 10 s pass).
template <class Done>
bool run_until(boost::asio::io_context& io, Done done) {
  auto until = std::chrono::steady_clock::now() + 10s;
  while (!done() && std::chrono::steady_clock::now() < until) {
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

void empty_pool() {
  while (WriteBufferPool::held_bytes() > 0) WriteBufferPool::take();
}

TEST(CorkedStream, CopiesABurstIntoABufferOfTheThreadsAndGivesItBackOnceWritten) {
  empty_pool();
  boost::asio::io_context io;
  Connection c(io);
  constexpr int frames = 200;
  constexpr std::size_t size = 100;  // under copy_threshold: copied next to its header
  c.out.hold(true);
  for (int n = 0; n < frames; ++n) c.out.write_frame(1, std::make_shared<const std::string>(payload(n, size)));
  const auto queued = c.out.held_bytes();
  EXPECT_GE(queued, frames * wire_size(size));  // the burst, copied
  c.out.hold(false);
  c.out.flush_now();

  Reader reader(c.client, frames);
  ASSERT_TRUE(run_until(io, [&] { return reader.done() && c.out.idle(); }));
  auto got = reader.join();
  ASSERT_EQ(got.size(), std::size_t(frames));
  for (int n = 0; n < frames; ++n) EXPECT_EQ(got[n], payload(n, size)) << n;
  // Written: the copy buffer is the thread's again; the connection keeps
  // only its bookkeeping (a segment or two).
  EXPECT_GE(WriteBufferPool::held_bytes(), frames * wire_size(size));
  EXPECT_LT(c.out.held_bytes(), 256u);
  c.out.shrink();
  EXPECT_EQ(c.out.held_bytes(), 0u);
}

TEST(CorkedStream, TheNextConnectionsBurstReusesTheBufferTheLastOneGrew) {
  empty_pool();
  boost::asio::io_context io;
  Connection first(io), second(io);
  auto burst = [&](Connection& c) {
    c.out.hold(true);
    for (int n = 0; n < 300; ++n) c.out.write_frame(1, std::make_shared<const std::string>(payload(n, 60)));
  };
  auto deliver = [&](Connection& c) {
    c.out.hold(false);
    c.out.flush_now();
    Reader reader(c.client, 300);
    run_until(io, [&] { return reader.done() && c.out.idle(); });
    auto got = reader.join();
    return got.size() == 300 && got.back() == payload(299, 60);
  };
  burst(first);
  ASSERT_TRUE(deliver(first));
  const auto grown = WriteBufferPool::held_bytes();
  ASSERT_GE(grown, 300 * wire_size(60));
  burst(second);
  EXPECT_EQ(WriteBufferPool::held_bytes(), 0u);  // taken, not allocated anew
  ASSERT_TRUE(deliver(second));
  EXPECT_EQ(WriteBufferPool::held_bytes(), grown);  // the same buffer, back
}

TEST(CorkedStream, ShrinkLeavesAWriteInProgressAloneAndEveryFrameArrives) {
  empty_pool();
  boost::asio::io_context io;
  Connection c(io);
  c.out.next_layer().socket().set_option(tcp::socket::send_buffer_size(64 * 1024));
  // Large frames are sent from their shared payloads, small ones copied;
  // 8 MiB is more than the kernel takes without a reader.
  constexpr int frames = 8000;
  auto size_of = [](int n) { return n % 2 ? std::size_t(2000) : std::size_t(100); };
  c.out.hold(true);
  for (int n = 0; n < frames; ++n) c.out.write_frame(1, std::make_shared<const std::string>(payload(n, size_of(n))));
  c.out.hold(false);
  c.out.flush_now();
  io.restart();
  io.poll();
  const auto writing = c.out.held_bytes();
  ASSERT_FALSE(c.out.idle());
  ASSERT_GT(writing, 100'000u);  // the copies and the payloads' references
  c.out.shrink();  // the write in progress still needs all of it
  EXPECT_EQ(c.out.held_bytes(), writing);

  Reader reader(c.client, frames);
  bool read_all = run_until(io, [&] { return reader.done() && c.out.idle(); });
  auto got = reader.join();
  ASSERT_TRUE(read_all);
  for (int n = 0; n < frames; ++n) ASSERT_EQ(got[n], payload(n, size_of(n))) << n;
  c.out.shrink();
  EXPECT_EQ(c.out.held_bytes(), 0u);
}

TEST(WriteBufferPool, KeepsAFewBuffersOfModerateSize) {
  empty_pool();
  std::string small = "short";  // no allocation to keep
  WriteBufferPool::give(small);
  EXPECT_EQ(WriteBufferPool::held_bytes(), 0u);
  std::string huge(WriteBufferPool::max_capacity + 1, 'x');
  WriteBufferPool::give(huge);
  EXPECT_TRUE(huge.empty());
  EXPECT_EQ(WriteBufferPool::held_bytes(), 0u);  // freed, not kept
  for (std::size_t i = 0; i < WriteBufferPool::max_buffers + 5; ++i) {
    std::string s(1000, 'y');
    WriteBufferPool::give(s);
  }
  EXPECT_EQ(WriteBufferPool::held_bytes(), WriteBufferPool::max_buffers * (std::string(1000, 'y').capacity() + 1));
  auto taken = WriteBufferPool::take();
  EXPECT_TRUE(taken.empty());  // no bytes of its last user
  EXPECT_GE(taken.capacity(), 1000u);
  empty_pool();
}

}  // namespace
