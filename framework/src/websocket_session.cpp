#include <array>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/zlib/error.hpp>
#include <boost/container/devector.hpp>

#include <channels/detail/consumer_access.hpp>
#include <channels/log.hpp>
#include <channels/websocket_consumer.hpp>

#include "consumer_link.hpp"
#include "corked_stream.hpp"
#include "frame_reader.hpp"
#include "sessions.hpp"

namespace channels::detail {

namespace {

namespace websocket = beast::websocket;

// Close codes an endpoint may put in a close frame (RFC 6455 7.4).
bool sendable_close_code(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

class WebsocketSession;

class WsTransport final : public WebsocketTransport {
 public:
  explicit WsTransport(std::weak_ptr<WebsocketSession> s) : session_(std::move(s)) {}
  void accept(std::string subprotocol) override;
  SendStatus send(OutFrame frame) override;
  void close(int code, std::string reason) override;

 private:
  std::weak_ptr<WebsocketSession> session_;
};

class WebsocketSession final : public Session, public std::enable_shared_from_this<WebsocketSession> {
 public:
  WebsocketSession(ServerImpl& server, ServerStream stream, Request req, Scope scope,
                   std::unique_ptr<Consumer> consumer, std::string early)
      : server_(server),
        ws_(std::in_place, std::move(stream)),
        out_(std::as_const(ws_->next_layer())),
        strand_(strand_of(ws_->get_executor())),
        req_(std::make_unique<Request>(std::move(req))),
        consumer_(static_cast<WebsocketConsumer*>(consumer.release())) {
    ConsumerAccess::bind(*consumer_, std::move(scope), server_.layer, strand_);
    if (!early.empty()) early_ = std::make_unique<std::string>(std::move(early));
  }

  ~WebsocketSession() override {
    // Only reached with the consumer unfinished when the server stopped
    // before this connection drained: on_disconnect still runs, once.
    finish(close_code::going_away);
    server_.remove(this);
  }

  void start(Session* from) {
    server_.hand_over(from, this, weak_from_this());
    ConsumerAccess::set_owner(*consumer_, weak_from_this());
    ConsumerAccess::set_transport(*consumer_, std::make_shared<WsTransport>(weak_from_this()));
    net::dispatch(strand_, [self = shared_from_this()] { self->connect(); });
  }

  void shutdown() override {
    net::post(strand_, [self = shared_from_this()] {
      self->server_shutdown_ = true;
      if (self->state_ == State::open) {
        self->close(close_code::going_away, "server shutting down");
      } else if (self->state_ == State::connecting) {
        self->refuse(http::status::service_unavailable);
      }
    });
  }

  void abort() override {
    net::post(strand_, [self = shared_from_this()] {
      if (!self->close_code_) self->close_code_ = close_code::going_away;
      if (self->state_ == State::connecting || self->state_ == State::handshaking) {
        self->state_ = State::closing;
        self->finish(close_code::going_away);
      }
      self->close_socket();
    });
  }

  // ---- what the consumer asks for (always on the strand) ----

  void accept(std::string subprotocol) {
    if (state_ != State::connecting) return;
    state_ = State::handshaking;
    if (timer_) timer_->cancel();  // the handshake timeout
    // Middleware may name the answer for a subprotocol it consumed (the
    // token offered as ["access_token", TOKEN]): a browser fails a handshake
    // whose answer names none of its offers.
    if (const auto& ext = consumer_->scope().extensions; subprotocol.empty() && ext.contains("subprotocol") &&
                                                         ext["subprotocol"].is_string())
      subprotocol = ext["subprotocol"].get<std::string>();
    if (!subprotocol.empty() &&
        std::find(consumer_->scope().subprotocols.begin(), consumer_->scope().subprotocols.end(),
                  subprotocol) == consumer_->scope().subprotocols.end()) {
      log().error("accept(\"{}\") on {}: the client did not offer that subprotocol; accepting without one",
                  subprotocol, consumer_->scope().path);
      subprotocol.clear();
    }
    const auto& o = server_.options;
    // Offered and enabled: messages go through Beast to be compressed.
    // Otherwise Beast only answers the handshake and the session reads
    // and writes the frames itself (frame_reader.hpp says why).
    compress_ = o.permessage_deflate.enabled &&
                (*req_)[http::field::sec_websocket_extensions].find("permessage-deflate") != beast::string_view::npos;
    ws_->set_option(websocket::stream_base::timeout{
        o.handshake_timeout, compress_ ? o.idle_timeout : websocket::stream_base::none(), compress_ && o.keepalive_pings});
    // The size limit is enforced here, not by Beast: Beast's teardown closes
    // the socket with the client's data unread, and the resulting RST can
    // destroy the 1009 close frame before the client reads it.
    ws_->read_message_max(0);
    ws_->auto_fragment(false);
    if (compress_) {
      // Negotiated only if the client offers it. Clients keep their own
      // window (bounding it would refuse clients that do not offer to be
      // bounded); ours and zlib's memLevel bound the memory per connection.
      websocket::permessage_deflate pmd;
      pmd.server_enable = true;
      pmd.server_max_window_bits = o.permessage_deflate.window_bits;
      pmd.client_max_window_bits = 15;
      pmd.memLevel = o.permessage_deflate.mem_level;
      pmd.compLevel = o.permessage_deflate.compression_level;
      pmd.msg_size_threshold = o.permessage_deflate.min_bytes;
      ws_->set_option(pmd);
    }
    // Beast echoes close codes above 4999, which RFC 6455 7.4.2 leaves
    // undefined: answer them with 1002 like the reserved ones. Its control
    // callback runs after the close frame is read and before the echo is
    // sent, so our close frame goes first (with a write in flight Beast's
    // echo wins the race, which is still a clean close).
    ws_->control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::close && ws_->reason().code > 4999 && state_ == State::open && !writing_) {
        state_ = State::closing;
        close_code_ = close_code::protocol_error;
        close_reason_ = "close code out of range";
        ConsumerAccess::mark_closed(*consumer_);
        start_close();
      }
    });
    ws_->set_option(websocket::stream_base::decorator([subprotocol](websocket::response_type& res) {
      res.set(http::field::server, "cppchannels");
      if (!subprotocol.empty()) res.set(http::field::sec_websocket_protocol, subprotocol);
    }));
    ws_->async_accept(*req_, [self = shared_from_this()](boost::system::error_code ec) {
      self->on_accept(ec);
    });
  }

  SendStatus send(OutFrame frame) {
    if (state_ == State::closing || state_ == State::closed) return SendStatus::closed;
    std::size_t cost = frame.payload->size() + frame_overhead;
    // Bytes waiting behind the write in progress (which is at most one
    // earlier queue's worth): a client that reads keeps this near zero.
    std::size_t queued = waiting_bytes() + out_.waiting_bytes();
    if (queued + cost > server_.options.send_queue_max_bytes && queued > 0) {
      ++server_.send_queue_drops;
      if (server_.options.send_queue_policy == SendQueuePolicy::drop) {
        if (++drops_ == 1 || drops_ % 1000 == 0)
          log().warn("{} {}: send queue full ({} bytes waiting), {} message(s) dropped so far",
                     consumer_->scope().path, client(), queued, drops_);
        return SendStatus::dropped;
      }
      // close: 1008, the client is treated as misbehaving; close_try_again:
      // 1013, the condition is temporary and it may come back after a back-off.
      bool try_again = server_.options.send_queue_policy == SendQueuePolicy::close_try_again;
      int code = try_again ? close_code::try_again_later : close_code::policy_violation;
      log().warn("{} {}: send queue full ({} bytes waiting): closing with {}; the client is not reading",
                 consumer_->scope().path, client(), queued, code);
      // The client is not reading: what is queued would never arrive anyway.
      queue_.erase(queue_.begin() + (writing_ ? 1 : 0), queue_.end());
      recount();
      close(code, try_again ? "send queue overflow: the client is not reading; try again later"
                            : "send queue overflow: the client is not reading");
      return SendStatus::closed;
    }
    if (state_ == State::open && !compress_) {
      // Server frames are not masked: the bytes are the same for every
      // member of a group, so the shared payload goes out as it is.
      count_out(*frame.payload);
      out_.write_frame(frame.binary ? 2 : 1, std::move(frame.payload));
      return SendStatus::queued;
    }
    queued_bytes_ += cost;
    queue_.push_back(std::move(frame));
    if (state_ == State::open && !writing_) write_next();
    return SendStatus::queued;
  }

  void close(int code, std::string reason) {
    if (state_ == State::connecting) {
      // Closing before accept refuses the handshake, as in Channels.
      refused_code_ = code;
      refuse(http::status::forbidden);
      return;
    }
    if (state_ == State::closing || state_ == State::closed) return;
    if (!sendable_close_code(code)) {
      log().error("close({}) on {}: that code may not be sent (use 1000-1003, 1007-1014 or 3000-4999); "
                  "closing with 1000",
                  code, consumer_->scope().path);
      code = close_code::normal;
    }
    close_code_ = code;
    close_reason_ = std::move(reason);
    if (state_ == State::handshaking) {
      // The handshake is in flight: close right after it completes.
      close_after_accept_ = true;
      return;
    }
    state_ = State::closing;
    ConsumerAccess::mark_closed(*consumer_);
    // Frames queued before close() go out first; the close frame follows.
    // The deadline starts now: a write stuck on a client that never reads
    // would otherwise hold the connection (and its queue) until idle_timeout.
    arm_close_timer();
    if (!writing_) start_close();
  }

 private:
  enum class State { connecting, handshaking, open, closing, closed };

  // What a queued message costs besides its payload (queue slot, shared
  // string header, frame header), so that empty messages count too.
  static constexpr std::size_t frame_overhead = 64;

  // Counted when handed to the transport (frames written by this session)
  // or once written (frames Beast compresses).
  void count_out(const std::string& payload) {
    server_.metrics.ws_messages_out.fetch_add(1, std::memory_order_relaxed);
    server_.metrics.ws_bytes_out.fetch_add(payload.size(), std::memory_order_relaxed);
  }

  std::size_t waiting_bytes() const {
    if (!writing_ || queue_.empty()) return queued_bytes_;
    return queued_bytes_ - (queue_.front().payload->size() + frame_overhead);
  }

  void recount() {
    queued_bytes_ = 0;
    for (auto& f : queue_) queued_bytes_ += f.payload->size() + frame_overhead;
  }

  std::string client() const {
    return consumer_->scope().client.host + ":" + std::to_string(consumer_->scope().client.port);
  }

  void connect() {
    auto self = shared_from_this();
    connect_ran_ = true;
    // What the handlers of one batch of layer messages send leaves in one
    // write, right after the batch.
    link_.open(
        *consumer_, server_.layer, strand_, weak_from_this(),
        [this](const Message& m) {
          out_.hold(true);
          guarded([&] { ConsumerAccess::dispatch(*consumer_, m); });
        },
        [this] {
          out_.hold(false);
          out_.flush_now();
        });
    guarded([&] { consumer_->on_connect(); });
    if (state_ == State::connecting) {
      // on_connect neither accepted nor refused yet (it may be waiting on
      // something): give it until the handshake timeout.
      timer().expires_after(server_.options.handshake_timeout);
      // The timer also keeps this session alive while on_connect decides.
      timer().async_wait([s = shared_from_this()](boost::system::error_code ec) {
        if (ec || s->state_ != State::connecting) return;
        log().warn("{}: on_connect did not accept() or close() within {} ms: refusing", s->consumer_->scope().path,
                   s->server_.options.handshake_timeout.count());
        s->timed_out_ = true;
        s->refuse(http::status::forbidden);
      });
    }
  }

  void refuse(http::status status) {
    if (state_ != State::connecting) return;
    state_ = State::closing;
    if (timer_) timer_->cancel();  // the handshake timeout
    ConsumerAccess::mark_closed(*consumer_);
    auto res = std::make_shared<http::response<http::string_body>>(status, req_->version());
    res->set(http::field::server, "cppchannels");
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->body() = std::to_string(static_cast<int>(status)) + " " + std::string(obsolete_reason(status)) +
                  ": the server refused this WebSocket connection\n";
    res->keep_alive(false);
    res->prepare_payload();
    server_.metrics.failed(status == http::status::service_unavailable     ? HandshakeFailure::shutdown
                           : status == http::status::internal_server_error ? HandshakeFailure::error
                           : timed_out_                                    ? HandshakeFailure::timeout
                                                                           : HandshakeFailure::refused);
    server_.access().info("WSREJECT {} {} {} {:.1f}ms", consumer_->scope().path, client(), static_cast<int>(status),
                          millis(std::chrono::steady_clock::now() - started_));
    out_.next_layer().next_layer().expires_after(server_.options.handshake_timeout);
    // Straight to the transport (TLS or not), under the write coalescing.
    http::async_write(out_.next_layer(), *res,
                      [self = shared_from_this(), res](boost::system::error_code, std::size_t) {
      boost::system::error_code ec;
      self->socket().shutdown(tcp::socket::shutdown_both, ec);
      self->close_socket();
      self->finish(self->refused_code_ ? self->refused_code_ : close_code::abnormal);
    });
  }

  void on_accept(boost::system::error_code ec) {
    if (ec) {
      server_.metrics.failed(HandshakeFailure::io_error);
      server_.access().info("WSREJECT {} {} handshake failed: {}", consumer_->scope().path, client(), ec.message());
      finish(close_code::abnormal);
      return;
    }
    state_ = State::open;
    ++server_.websockets_open;
    // The upgrade request was only needed for the handshake, and Beast too
    // unless it compresses (released once its completion has unwound).
    req_.reset();
    if (!compress_) {
      net::post(strand_, [self = shared_from_this()] { self->ws_.reset(); });
      reader_ = FrameReader(server_.options.max_message_bytes);
      out_.next_layer().drop_timeouts();
      out_.shrink();
      boost::system::error_code ignored;
      socket().non_blocking(true, ignored);
      got_data_ = true;  // the handshake counts: silence is measured from here
      timer_.reset();    // the handshake timeout's, if on_connect took its time
    }
    ++server_.metrics.ws_connects;
    opened_ = std::chrono::steady_clock::now();
    server_.access().info("WSCONNECT {} {} {:.1f}ms", consumer_->scope().path, client(), millis(opened_ - started_));
    if (compress_) read();
    if (!compress_) {
      // Frames sent while the handshake was in flight.
      for (auto& f : queue_) {
        count_out(*f.payload);
        out_.write_frame(f.binary ? 2 : 1, std::move(f.payload));
      }
      queue_.clear();
      queued_bytes_ = 0;
    }
    if (close_after_accept_) {
      state_ = State::closing;
      ConsumerAccess::mark_closed(*consumer_);
      if (!writing_) start_close();
    } else if (server_shutdown_) {
      close(close_code::going_away, "server shutting down");
    } else if (!queue_.empty() && !writing_) {
      write_next();
    }
    if (!compress_) {
      read_early_then_frames();
    } else if (early_) {
      // Compressed or not depends on the answer, which the client did not wait for.
      early_.reset();
      close(close_code::protocol_error, "data sent before the handshake was answered");
    }
  }

  // What the client sent before the 101, as if it had just been read.
  void read_early_then_frames() {
    if (early_) {
      auto bytes = std::move(early_);
      if (!handle_bytes(bytes->data(), bytes->size())) return;
    }
    read_frames();
  }

  void read() {
    reading_ = true;
    if (!buffer_) buffer_ = std::make_unique<beast::flat_buffer>();
    ws_->async_read_some(*buffer_, read_chunk, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      self->on_read(ec);
    });
  }

  void on_read(boost::system::error_code ec) {
    reading_ = false;
    if (ec) {
      int code = close_code::abnormal;
      if (ec == websocket::error::closed) {
        // The peer's close frame (or the answer to ours) carries the code.
        code = ws_->reason().code ? static_cast<int>(ws_->reason().code) : 1005;
        if (close_code_ && state_ == State::closing) code = close_code_;
      } else if (ec.category() == beast::zlib::make_error_code(beast::zlib::error::general).category() &&
                 state_ == State::open && !writing_) {
        // Beast fails the stream without a close frame when compressed data
        // does not inflate (RFC 7692 8.2.3.1 asks only to fail the
        // connection): say 1007 first, as for invalid UTF-8.
        fail_frames(close_code::invalid_payload, "compressed data does not inflate");
        return;
      } else if (ec == websocket::error::message_too_big) {
        code = close_code::too_big;  // Beast has sent the close frame with 1009
      } else if (state_ == State::closing && close_code_) {
        code = close_code_;
      }
      finish(code);
      return;
    }
    if (buffer_->size() > server_.options.max_message_bytes) {
      // Too big: say so with 1009 and stop reading; the closing handshake
      // reads (and discards) the rest, so the client can see the close frame.
      buffer_->consume(buffer_->size());
      buffer_->shrink_to_fit();
      if (state_ == State::open) close(close_code::too_big, "message too big");
      return;
    }
    if (!ws_->is_message_done()) {
      read();
      return;
    }
    std::string_view data(static_cast<const char*>(buffer_->data().data()), buffer_->size());
    if (state_ == State::open) {
      server_.metrics.ws_messages_in.fetch_add(1, std::memory_order_relaxed);
      server_.metrics.ws_bytes_in.fetch_add(data.size(), std::memory_order_relaxed);
      bool text = ws_->got_text();
      // Replies sent from here leave with the next read's flush (below).
      out_.hold(true);
      guarded([&] {
        if (text)
          consumer_->on_receive(data);
        else
          consumer_->on_receive_bytes(data);
      });
      out_.hold(false);
    }
    buffer_->consume(buffer_->size());
    // The buffer grew to hold the whole message: a connection that once got
    // a large one must not keep that much memory for as long as it lives.
    if (buffer_->capacity() > kept_read_buffer) buffer_->shrink_to_fit();
    read();
  }

  // ---- frames read by the session (connections that do not compress) ----

  tcp::socket& socket() { return out_.next_layer().socket(); }
  void close_socket() {
    boost::system::error_code ignored;
    socket().close(ignored);
  }

  // Plain TCP waits for the socket to be readable and reads into the
  // thread's buffer, so an idle connection holds no read buffer at all.
  // TLS reads through the stream, into the connection's own buffer.
  void read_frames() {
    auto self = shared_from_this();
    if (out_.next_layer().is_tls()) {
      if (!tls_buffer_) tls_buffer_ = std::make_unique<char[]>(tls_read_size);
      out_.next_layer().async_read_some(net::buffer(tls_buffer_.get(), tls_read_size),
                                        [self](boost::system::error_code ec, std::size_t n) {
                                          if (ec) return self->on_read_error(ec);
                                          if (self->handle_bytes(self->tls_buffer_.get(), n)) self->read_frames();
                                        });
      return;
    }
    socket().async_wait(tcp::socket::wait_read, [self](boost::system::error_code ec) {
      if (ec) return self->on_read_error(ec);
      self->on_readable();
    });
  }

  void on_readable() {
    thread_local std::vector<char> buffer(read_chunk);
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = socket().read_some(net::buffer(buffer), ec);
      if (ec == net::error::would_block || ec == net::error::try_again) break;
      if (ec) return on_read_error(ec);
      if (!handle_bytes(buffer.data(), n)) return;
      if (n < buffer.size()) break;  // drained: the next bytes wake the wait
    }
    read_frames();
  }

  // Everything one read brought: its messages are handled in turn and
  // what their handlers send leaves in one write, after the last. False
  // once reading is over (a close frame, a failure).
  bool handle_bytes(char* data, std::size_t n) {
    got_data_ = true;
    out_.hold(true);
    FrameEvents events{*this};
    auto failure = reader_.read(data, n, events);
    out_.hold(false);
    if (failure) fail_frames(failure.code, failure.reason);
    out_.flush_now();
    return !reader_.done();
  }

  struct FrameEvents {
    WebsocketSession& s;
    void message(bool text, std::string_view data) {
      if (s.state_ != State::open) return;  // closing: the consumer is done with them
      s.server_.metrics.ws_messages_in.fetch_add(1, std::memory_order_relaxed);
      s.server_.metrics.ws_bytes_in.fetch_add(data.size(), std::memory_order_relaxed);
      s.guarded([&] {
        if (text)
          s.consumer_->on_receive(data);
        else
          s.consumer_->on_receive_bytes(data);
      });
    }
    void ping(std::string_view payload) {
      if (s.state_ == State::open) s.out_.write_frame(0xA, std::make_shared<const std::string>(payload));
    }
    void pong(std::string_view) {}  // any frame counts as life (got_data_)
    void close(int code, std::string_view) { s.peer_closed(code); }
  };

  // The peer's close frame: the answer to ours, or its own (echoed).
  void peer_closed(int code) { stop_reading(code, code == 1005 ? close_code::normal : code, {}); }

  // The client broke the protocol: say why with a close frame (1002, 1007
  // or 1009) and read no further frames.
  void fail_frames(int code, std::string_view reason) { stop_reading(code, code, reason); }

  // Our close frame with `answer`, unless the closing handshake was ours
  // to begin with, then the teardown. `code` is what on_disconnect gets.
  void stop_reading(int code, int answer, std::string_view reason) {
    if (state_ == State::open) {
      state_ = State::closing;
      close_code_ = code;
      ConsumerAccess::mark_closed(*consumer_);
      write_close_frame(answer, reason);
    }
    teardown();
  }

  void write_close_frame(int code, std::string_view reason) {
    std::string payload{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    payload.append(reason.substr(0, 123));
    out_.write_frame(0x8, std::make_shared<const std::string>(std::move(payload)));
  }

  // After what is queued (the close frame last) is written: our side of
  // the TCP connection is shut down and the peer's bytes are read and
  // dropped until it closes its side (closing with unread bytes would
  // reset the connection, and the reset can destroy the close frame before
  // the peer reads it; Beast's TCP teardown stops after one read). TLS
  // ends with Beast's teardown (close_notify). The close deadline bounds both.
  void teardown() {
    arm_close_timer();
    out_.async_write_some(net::const_buffer(), [self = shared_from_this()](boost::system::error_code, std::size_t) {
      if (self->out_.next_layer().is_tls()) {
        async_teardown(beast::role_type::server, self->out_.next_layer(), [self](boost::system::error_code) {
          self->close_socket();
          self->finish(self->close_code_);
        });
        return;
      }
      boost::system::error_code ignored;
      self->socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->drain();
    });
  }

  void on_read_error(boost::system::error_code) {
    close_socket();
    finish(state_ == State::closing && close_code_ ? close_code_ : close_code::abnormal);
  }

  // A peer silent for the idle timeout is cut off; with keepalive pings it
  // is pinged halfway. The server's sweep calls every half timeout; each
  // read sets a flag, so that reading costs no timer update, and an idle
  // connection holds no timer of its own.
  void idle_check() override {
    net::post(strand_, [self = shared_from_this()] { self->on_idle_check(); });
  }

  void on_idle_check() {
    if (state_ != State::open) return;
    // What a burst grew goes back: the inbox's blocks, the write queues'
    // capacity (a no-op while a write is pending).
    link_.trim();
    out_.shrink();
    if (compress_ || deadline_armed_) return;
    if (got_data_) {
      got_data_ = false;
      silent_checks_ = 0;
    } else if (++silent_checks_ == 1) {
      if (server_.options.keepalive_pings) {
        out_.write_frame(0x9, std::make_shared<const std::string>());
        out_.flush_now();
      }
    } else {
      close_socket();  // the pending read ends the session (1006)
    }
  }

  void drain() {
    auto chunk = std::make_shared<std::array<char, 4096>>();
    socket().async_read_some(
        net::buffer(*chunk), [self = shared_from_this(), chunk](boost::system::error_code ec, std::size_t) {
          if (!ec) return self->drain();
          self->close_socket();
          self->finish(self->close_code_);
        });
  }

  void write_next() {
    writing_ = true;
    auto& f = queue_.front();
    ws_->text(!f.binary);
    ws_->async_write(net::buffer(*f.payload), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      self->on_write(ec);
    });
  }

  void on_write(boost::system::error_code ec) {
    writing_ = false;
    if (!ec && !queue_.empty()) {
      count_out(*queue_.front().payload);
    }
    if (!queue_.empty()) {
      queued_bytes_ -= queue_.front().payload->size() + frame_overhead;
      queue_.pop_front();
    }
    if (ec) {
      // The read side sees the same failure and finishes the session.
      queue_.clear();
      queued_bytes_ = 0;
      return;
    }
    if (state_ == State::closing) {
      if (!queue_.empty())
        write_next();
      else
        start_close();
      return;
    }
    if (!queue_.empty()) write_next();
  }

  // A peer that never answers the close frame (or never reads) is cut off.
  void arm_close_timer() {
    if (deadline_armed_) return;
    deadline_armed_ = true;
    timer().expires_after(server_.options.handshake_timeout);
    timer().async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (auto s = weak.lock(); s && !ec) s->close_socket();
    });
  }

  void start_close() {
    if (close_started_) return;
    close_started_ = true;
    arm_close_timer();
    if (!compress_) {
      // The peer's answer comes through read_frames(), which goes on
      // reading until it does.
      write_close_frame(close_code_, close_reason_);
      return;
    }
    ws_->async_close(websocket::close_reason(static_cast<websocket::close_code>(close_code_), close_reason_),
                    [self = shared_from_this()](boost::system::error_code) {
                      // With a read pending, the read completes with `closed` and
                      // finishes the session; without one, this does.
                      if (!self->reading_) self->finish(self->close_code_ ? self->close_code_ : close_code::abnormal);
                    });
  }

  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      log().error("consumer for {} {} threw: {}; closing the connection with 1011", consumer_->scope().path,
                  client(), e.what());
      if (state_ == State::connecting)
        refuse(http::status::internal_server_error);
      else
        close(close_code::internal_error, "internal server error");
    }
  }

  // Runs on_disconnect once and releases the channel and groups.
  void finish(int code) {
    if (state_ == State::closed && finished_) return;
    bool was_open = state_ == State::open || state_ == State::closing;
    state_ = State::closed;
    if (finished_) return;
    finished_ = true;
    if (timer_) timer_->cancel();
    queue_.clear();
    if (!connect_ran_) return;
    ConsumerAccess::mark_closed(*consumer_);
    if (was_open && consumer_->accepted()) {
      --server_.websockets_open;
      ++server_.metrics.ws_disconnects;
      server_.access().info("WSDISCONNECT {} {} {} {:.1f}ms", consumer_->scope().path, client(), code,
                            millis(std::chrono::steady_clock::now() - opened_));
    }
    try {
      consumer_->on_disconnect(code);
    } catch (const std::exception& e) {
      log().error("on_disconnect for {} threw: {}", consumer_->scope().path, e.what());
    }
    link_.close(*consumer_);
  }

  ServerImpl& server_;
  // The handshake, and every frame of a connection that compresses.
  std::optional<websocket::stream<CorkedStream<ServerStream>>> ws_;
  CorkedStream<ServerStream> out_;  // the same stream as ws_'s next layer
  Strand strand_;
  std::unique_ptr<Request> req_;  // until the handshake is answered
  std::unique_ptr<std::string> early_;  // bytes after the request, until the handshake is answered
  std::unique_ptr<WebsocketConsumer> consumer_;
  ConsumerLink link_;
  std::unique_ptr<beast::flat_buffer> buffer_;  // messages Beast reads (compressed connections)
  boost::container::devector<OutFrame> queue_;  // empty costs nothing, unlike std::deque
  // The handshake timeout (when on_connect does not decide at once), then
  // the closing deadline: made when first needed, since an open connection
  // has neither (the server's sweep does its idle checks).
  std::unique_ptr<net::steady_timer> timer_;
  net::steady_timer& timer() {
    // On the socket's executor: the same strand, without the copy of it a
    // timer made from strand_ would allocate.
    if (!timer_) timer_ = std::make_unique<net::steady_timer>(socket().get_executor());
    return *timer_;
  }
  State state_ = State::connecting;
  bool writing_ = false;
  bool close_started_ = false;
  bool deadline_armed_ = false;
  bool close_after_accept_ = false;
  bool connect_ran_ = false;
  bool finished_ = false;
  bool server_shutdown_ = false;
  bool timed_out_ = false;  // refused because on_connect never decided
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();  // upgrade request read
  std::chrono::steady_clock::time_point opened_;
  int close_code_ = 0;
  int refused_code_ = 0;
  std::string close_reason_;
  std::uint64_t drops_ = 0;
  std::size_t queued_bytes_ = 0;
  bool reading_ = false;
  bool compress_ = false;
  bool got_data_ = false;             // since the last idle check
  unsigned char silent_checks_ = 0;  // idle checks in a row without data
  FrameReader reader_{0};
  std::unique_ptr<char[]> tls_buffer_;
  // Small: the TLS stream keeps a whole record of its own and decrypts from
  // it without another syscall.
  static constexpr std::size_t tls_read_size = 4 * 1024;
  static constexpr std::size_t read_chunk = 64 * 1024;
  // What a read buffer may keep between messages (Beast reads at most
  // 1,536 bytes at a time into an empty one).
  static constexpr std::size_t kept_read_buffer = 16 * 1024;
};

void WsTransport::accept(std::string subprotocol) {
  if (auto s = session_.lock()) s->accept(std::move(subprotocol));
}
SendStatus WsTransport::send(OutFrame frame) {
  auto s = session_.lock();
  return s ? s->send(std::move(frame)) : SendStatus::closed;
}
void WsTransport::close(int code, std::string reason) {
  if (auto s = session_.lock()) s->close(code, std::move(reason));
}

}  // namespace

void start_websocket_session(ServerImpl& server, Session* from, ServerStream stream, Request req, Scope scope,
                             std::unique_ptr<Consumer> consumer, std::string early) {
  std::make_shared<WebsocketSession>(server, std::move(stream), std::move(req), std::move(scope),
                                     std::move(consumer), std::move(early))
      ->start(from);
}

}  // namespace channels::detail
