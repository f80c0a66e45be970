#pragma once
// Private to the server: a next layer for beast::websocket::stream that
// coalesces writes.
//
// Why: one async_write per WebSocket message costs one send() per message,
// and in a fan-out that syscall is most of the server's CPU per delivery.
// Here every write issued in one turn of the event loop, whether a frame the
// session encoded itself (write_frame) or one of Beast's own writes (pongs,
// close frames, compressed messages), is queued in order and goes out in one
// gathered write. While that write is in flight, new bytes wait and leave
// together right after it. Beast keeps doing the protocol; only the syscalls
// are shared.

#include <algorithm>
#include <cstring>
#include <span>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/error_code.hpp>

#include "flush_window.hpp"
#include "write_buffer_pool.hpp"

namespace channels::detail {

template <class NextLayer>
class CorkedStream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using next_layer_type = NextLayer;

  /// Payloads up to this size are copied next to their header, so that a
  /// burst of small frames is one contiguous buffer; larger ones are sent
  /// from the shared payload itself.
  static constexpr std::size_t copy_threshold = 1024;

  template <class... Args>
  explicit CorkedStream(Args&&... args) : state_(std::make_shared<State>(std::forward<Args>(args)...)) {}

  NextLayer& next_layer() noexcept { return state_->next; }
  const NextLayer& next_layer() const noexcept { return state_->next; }
  executor_type get_executor() noexcept { return state_->next.get_executor(); }

  /// Bytes of frames queued with write_frame() behind the write in progress:
  /// what grows when a client does not read. The write in progress is left
  /// out: its bytes may already be with the client while its completion
  /// still waits behind other work on a busy loop, and counting them would
  /// make a client that keeps up look like one that does not.
  std::size_t waiting_bytes() const noexcept { return state_->pending.frame_bytes; }

  /// Bytes of memory this connection's queues hold, used or not: what shrink()
  /// gives back. Frames copied for a write are in a buffer of the thread's
  /// (see write_buffer_pool.hpp) from the first one queued until they are
  /// written, so a connection with nothing to write holds only bookkeeping.
  std::size_t held_bytes() const noexcept {
    const auto& s = *state_;
    return s.pending.held_bytes() + s.in_flight.held_bytes() + s.buffers.capacity() * sizeof(s.buffers[0]);
  }

  /// Queues one whole, unmasked server frame (FIN set): `opcode` 1 for text,
  /// 2 for binary. The payload is kept alive until it is written.
  void write_frame(unsigned opcode, std::shared_ptr<const std::string> payload) {
    auto& s = *state_;
    if (s.failed) return;
    unsigned char header[10];
    std::size_t n = encode_header(header, opcode, payload->size());
    auto& b = s.pending;
    b.frame_bytes += n + payload->size();
    b.append_copy(header, n);
    if (payload->size() <= copy_threshold) {
      b.append_copy(payload->data(), payload->size());
    } else {
      b.append_external(boost::asio::buffer(*payload));
      b.keep.push_back(std::move(payload));
    }
    schedule_flush();
  }

  /// While on, frames queued skip the flush window: their sender knows when
  /// the batch is complete. The session holds around a consumer's handling
  /// of a message it read, and the replies leave with the next socket read
  /// below (which Beast makes once it has handled every frame it buffered),
  /// so a batch of requests read together is answered in one write; and
  /// around a drain of layer messages, ended by flush_now().
  void hold(bool on) noexcept { state_->holding = on; }

  /// Writes what is queued now (or right after the write in flight).
  void flush_now() {
    if (!state_->pending.empty()) flush(state_);
  }

  /// Nothing queued and no write in progress.
  bool idle() const noexcept { return !state_->writing && state_->pending.empty(); }

  /// Gives back what earlier writes left in the batches' capacity (the
  /// handshake's answer is a dozen pieces; a burst of large frames one
  /// each), for a connection about to sit idle. Nothing changes while a
  /// write is queued.
  void shrink() {
    if (!idle()) return;
    auto& s = *state_;
    s.pending = Batch();
    s.in_flight = Batch();
    std::vector<boost::asio::const_buffer>().swap(s.buffers);
  }

  /// Beast comes here only when it has handled every frame it buffered: the
  /// replies to all of them are queued by now, so they leave at once rather
  /// than waiting in the flush window (a closed-loop echo gets its answer in
  /// the same turn; pipelined requests read together are answered together).
  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    flush_now();
    return state_->next.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  /// Beast's writes: queued behind what is already waiting, completed (with
  /// the whole size) once they are on the wire.
  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        [state = state_](auto handler, const ConstBufferSequence& buffers) {
          if (state->failed) {
            auto ex = state->next.get_executor();
            boost::asio::post(ex, boost::asio::append(std::move(handler), state->error, std::size_t{0}));
            return;
          }
          std::size_t total = 0;
          for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
               ++it) {
            boost::asio::const_buffer b(*it);
            if (b.size() == 0) continue;
            state->pending.append_external(b);
            total += b.size();
          }
          state->pending.completions.push_back({Handler(std::move(handler)), total});
          // Beast waits for each write before the next: no window for it.
          CorkedStream::flush(state);
        },
        token, buffers);
  }

 private:
  using Handler = boost::asio::any_completion_handler<void(boost::system::error_code, std::size_t)>;

  struct Completion {
    Handler handler;
    std::size_t bytes;
  };

  // What one gathered write carries.
  struct Batch {
    struct Segment {
      const void* external;  // null: `size` bytes at `offset` in `copied`
      std::size_t offset;
      std::size_t size;
    };
    std::string copied;
    std::vector<Segment> segments;
    std::vector<std::shared_ptr<const std::string>> keep;
    std::vector<Completion> completions;
    std::size_t frame_bytes = 0;

    void append_copy(const void* data, std::size_t n) {
      if (n == 0) return;
      if (copied.empty() && copied.capacity() == std::string().capacity()) copied = WriteBufferPool::take();
      if (!segments.empty() && segments.back().external == nullptr) {
        segments.back().size += n;
      } else {
        segments.push_back({nullptr, copied.size(), n});
      }
      copied.append(static_cast<const char*>(data), n);
    }
    void append_external(boost::asio::const_buffer b) { segments.push_back({b.data(), 0, b.size()}); }
    bool empty() const { return segments.empty() && completions.empty(); }
    std::size_t held_bytes() const noexcept {
      return (copied.capacity() > std::string().capacity() ? copied.capacity() + 1 : 0) +
             segments.capacity() * sizeof(Segment) + keep.capacity() * sizeof(keep[0]) +
             completions.capacity() * sizeof(Completion);
    }
    void clear() {
      WriteBufferPool::give(copied);  // written: the next connection's frames go there
      segments.clear();
      keep.clear();
      completions.clear();
      frame_bytes = 0;
    }
  };

  struct State final : Flushable, std::enable_shared_from_this<State> {
    template <class... Args>
    explicit State(Args&&... args) : next(std::forward<Args>(args)...) {}
    void flush() override {
      boost::asio::dispatch(next.get_executor(), [self = this->shared_from_this()] { CorkedStream::flush(self); });
    }
    NextLayer next;
    Batch pending;    // filling up during this turn
    Batch in_flight;  // being written
    std::vector<boost::asio::const_buffer> buffers;
    bool writing = false;
    bool in_window = false;
    bool holding = false;  // see hold()
    bool failed = false;
    boost::system::error_code error;
  };

  static std::size_t encode_header(unsigned char* h, unsigned opcode, std::size_t size) {
    h[0] = static_cast<unsigned char>(0x80 | (opcode & 0x0f));
    if (size < 126) {
      h[1] = static_cast<unsigned char>(size);
      return 2;
    }
    if (size <= 0xffff) {
      h[1] = 126;
      h[2] = static_cast<unsigned char>(size >> 8);
      h[3] = static_cast<unsigned char>(size);
      return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; ++i) h[2 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(size) >> (56 - 8 * i));
    return 10;
  }

  void schedule_flush() { schedule_flush(state_); }

  // Nothing to do while a write is in flight: its completion flushes.
  // Otherwise the connection waits in the thread's flush window (see
  // flush_window.hpp), unless it already has plenty to send.
  static void schedule_flush(const std::shared_ptr<State>& state) {
    if (state->writing) return;
    if (state->pending.frame_bytes >= FlushWindow::max_bytes) {
      flush(state);
      return;
    }
    if (state->holding) return;
    state->frames.fetch_add(1, std::memory_order_relaxed);
    FlushWindow::note_more();
    if (state->in_window) return;
    state->in_window = true;
    FlushWindow::add(state, state->next.get_executor());
  }

  // Writes what is pending: as much as the socket takes at once, right
  // here, and the rest (if any) asynchronously. Writing at once saves the
  // completion's trip through the event loop for the common case of a
  // client that reads, and releases the bytes before anything else runs.
  static void flush(const std::shared_ptr<State>& state) {
    auto& s = *state;
    s.in_window = false;
    if (s.writing || s.failed || s.pending.empty()) return;
    std::swap(s.pending, s.in_flight);
    s.buffers.clear();
    s.buffers.reserve(s.in_flight.segments.size());
    for (auto& seg : s.in_flight.segments)
      s.buffers.emplace_back(seg.external ? seg.external : s.in_flight.copied.data() + seg.offset, seg.size);
    boost::system::error_code ec;
    std::size_t first = 0;  // buffers[first..] are left to write
    while (first < s.buffers.size()) {
      std::size_t n = try_write_some(s.next, s.buffers, first, ec);
      if (ec || n == 0) break;
      consume(s.buffers, first, n);
    }
    if (ec || first == s.buffers.size()) {
      // Done (or broken) without waiting: the completions must not run
      // inside the initiating call (Beast's own write may be it).
      written(state, ec, /*posted=*/true);
      return;
    }
    s.buffers.erase(s.buffers.begin(), s.buffers.begin() + static_cast<std::ptrdiff_t>(first));
    s.writing = true;
    boost::asio::async_write(s.next, s.buffers, [state](boost::system::error_code ec, std::size_t) {
      state->writing = false;
      written(state, ec, /*posted=*/false);
    });
  }

  static std::size_t try_write_some(NextLayer& next, const std::vector<boost::asio::const_buffer>& buffers,
                                    std::size_t first, boost::system::error_code& ec) {
    // At most 64 buffers per call: what Asio hands to one writev.
    std::size_t count = std::min<std::size_t>(buffers.size() - first, 64);
    return next.try_write_some(std::span<const boost::asio::const_buffer>(buffers.data() + first, count), ec);
  }

  // Drops `n` written bytes from the front of buffers[first..].
  static void consume(std::vector<boost::asio::const_buffer>& buffers, std::size_t& first, std::size_t n) {
    while (n > 0 && first < buffers.size()) {
      auto& b = buffers[first];
      if (n >= b.size()) {
        n -= b.size();
        ++first;
      } else {
        b += n;
        n = 0;
      }
    }
  }

  // The batch in flight is on the wire (or failed): release it and tell
  // Beast's writes in it, then write whatever queued up meanwhile.
  static void written(const std::shared_ptr<State>& state, boost::system::error_code ec, bool posted) {
    auto& s = *state;
    auto done = std::move(s.in_flight.completions);
    s.in_flight.clear();
    s.in_flight.completions.clear();
    if (ec) {
      // Every later write fails the same way; the read side sees the
      // broken connection and ends the session.
      s.failed = true;
      s.error = ec;
      for (auto& c : s.pending.completions) done.push_back(std::move(c));
      s.pending.clear();
    }
    for (auto& c : done) {
      auto h = boost::asio::append(std::move(c.handler), ec, ec ? std::size_t{0} : c.bytes);
      if (posted)
        boost::asio::post(s.next.get_executor(), std::move(h));
      else
        boost::asio::dispatch(std::move(h));
    }
    if (!s.pending.empty()) flush(state);
  }

  std::shared_ptr<State> state_;
};

// Closing the TCP connection after the closing handshake is the lower
// layer's business.
template <class NextLayer>
void teardown(boost::beast::role_type role, CorkedStream<NextLayer>& stream, boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, CorkedStream<NextLayer>& stream, TeardownHandler&& handler) {
  using boost::beast::websocket::async_teardown;
  async_teardown(role, stream.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace channels::detail
