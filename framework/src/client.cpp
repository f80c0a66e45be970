#include <channels/client.hpp>

#include <variant>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace channels {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

// Why a TLS handshake failed, in words that say what to do about it.
std::string tls_failure(const boost::system::error_code& ec, SSL* ssl, const std::string& host,
                        const std::string& port, std::string& certificate_error) {
  if (ec.category() == net::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    long result = SSL_get_verify_result(ssl);
    certificate_error = result == X509_V_OK ? "refused" : X509_verify_cert_error_string(result);
    if (result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH)
      return fmt::format(
          "TLS certificate verification failed for {}: {}. The certificate was issued for other names: connect "
          "with a name or address it names, or, for a test or development server only, turn verification off "
          "(Options::tls_verify = false)",
          host, certificate_error);
    return fmt::format(
        "TLS certificate verification failed for {}: {}. Trust the CA that signed the server's certificate "
        "(Options::tls_ca_file, a PEM file; for a self-signed certificate, that certificate), or, for a test "
        "or development server only, turn verification off (Options::tls_verify = false)",
        host, certificate_error);
  }
  if (ec == net::ssl::error::stream_truncated || ec == net::error::eof || ec == beast::error::timeout ||
      (ec.category() == net::error::get_ssl_category() &&
       (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER ||
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_PACKET_LENGTH_TOO_LONG)))
    return fmt::format("TLS handshake with {}:{} failed: {} (does that port speak TLS? use ws:// for a plain "
                       "WebSocket server)",
                       host, port, ec.message());
  return fmt::format("TLS handshake with {}:{} failed: {}", host, port, ec.message());
}

}  // namespace

struct WebsocketClient::Impl {
  net::io_context ioc{1};
  // Before the stream: a TLS stream refers to its context.
  std::optional<net::ssl::context> tls;
  std::variant<std::monostate, PlainWs, TlsWs> ws;
  beast::flat_buffer buffer;
  Options options;
  bool open = false;
  int close_code = 0;
  std::string close_reason;
  // A receive() that timed out leaves its read running; the next one waits for it.
  bool reading = false;
  bool read_done = false;
  boost::system::error_code read_ec;

  bool has_stream() const { return ws.index() != 0; }

  // Calls f with the WebSocket stream, plain or TLS (there must be one).
  template <class F>
  decltype(auto) with_ws(F&& f) {
    if (auto* plain = std::get_if<PlainWs>(&ws)) return f(*plain);
    return f(std::get<TlsWs>(ws));
  }

  // Ends the connection there is and lets its pending operations finish
  // (a read left running by a receive() that timed out, over TLS, refers to
  // the stream): only then does the stream go, before the context it uses.
  void reset_stream() {
    if (!has_stream()) return;
    boost::system::error_code ec;
    tcp().socket().close(ec);
    ioc.restart();
    while (ioc.poll() > 0) {
    }
    ws.emplace<std::monostate>();
  }

  beast::tcp_stream& tcp() {
    return with_ws([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); });
  }

  // Runs the io_context until `done` or the deadline; false on timeout.
  template <class Pred>
  bool run_until(Pred done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      if (ioc.stopped()) ioc.restart();
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      ioc.run_one_for(deadline - now);
    }
    return true;
  }

  void require_open() const {
    if (!open)
      throw std::system_error(make_error_code(net::error::not_connected),
                              "WebsocketClient: the connection is not open");
  }

  void write(std::string_view data, bool binary) {
    require_open();
    boost::system::error_code ec;
    bool done = false;
    with_ws([&](auto& s) {
      s.binary(binary);
      s.async_write(net::buffer(data.data(), data.size()), [&](boost::system::error_code e, std::size_t) {
        ec = e, done = true;
      });
    });
    if (!run_until([&] { return done; }, options.timeout))
      throw std::system_error(make_error_code(net::error::timed_out), "WebsocketClient: send timed out");
    if (ec) {
      // The server may have closed with a reason while we were writing (1009
      // for a message too big): its close frame can still be read.
      if (!reading) {
        reading = true;
        read_done = false;
        start_read();
      }
      run_until([&] { return read_done; }, std::chrono::milliseconds(500));
      reading = false;
      mark_closed(read_done && read_ec ? read_ec : ec);
      throw std::system_error(ec, "WebsocketClient: send failed, the connection is closed (close code " +
                                      std::to_string(close_code) + ")");
    }
  }

  void start_read() {
    with_ws([this](auto& s) {
      s.async_read(buffer, [this](boost::system::error_code e, std::size_t) {
        read_ec = e;
        read_done = true;
      });
    });
  }

  const websocket::close_reason& reason() {
    return with_ws([](auto& s) -> const websocket::close_reason& { return s.reason(); });
  }

  void mark_closed(const boost::system::error_code& ec) {
    open = false;
    if (ec == websocket::error::closed) {
      close_code = reason().code ? static_cast<int>(reason().code) : 1005;
      close_reason = std::string(reason().reason.c_str());
    } else if (close_code == 0) {
      close_code = 1006;
    }
  }
};

WebsocketClient::WebsocketClient() : impl_(std::make_unique<Impl>()) {}
WebsocketClient::~WebsocketClient() {
  if (impl_ && impl_->has_stream()) {
    boost::system::error_code ec;
    impl_->tcp().socket().close(ec);
  }
}
WebsocketClient::WebsocketClient(WebsocketClient&&) noexcept = default;
WebsocketClient& WebsocketClient::operator=(WebsocketClient&&) noexcept = default;

HandshakeResult WebsocketClient::connect(std::string_view url) { return connect(url, Options{}); }

HandshakeResult WebsocketClient::connect(std::string_view url, Options options) {
  HandshakeResult result;
  auto& d = *impl_;
  d.options = options;
  d.open = false;
  d.close_code = 0;
  d.close_reason.clear();
  std::string_view rest = url;
  bool secure = false;
  if (rest.substr(0, 5) == "ws://") {
    rest.remove_prefix(5);
  } else if (rest.substr(0, 6) == "wss://") {
    rest.remove_prefix(6);
    secure = true;
  } else {
    result.error = fmt::format("unsupported URL '{}': use ws://host:port/path or wss://host:port/path", url);
    return result;
  }
  auto slash = rest.find('/');
  std::string hostport(rest.substr(0, slash));
  std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host = hostport, port = secure ? "443" : "80";
  if (!hostport.empty() && hostport.front() == '[') {  // [::1]:8000
    auto end = hostport.find(']');
    host = hostport.substr(1, end - 1);
    if (end != std::string::npos && end + 1 < hostport.size() && hostport[end + 1] == ':')
      port = hostport.substr(end + 2);
  } else if (auto colon = hostport.rfind(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }

  d.reset_stream();
  d.tls.reset();
  if (secure) {
    d.tls.emplace(net::ssl::context::tls_client);
    d.tls->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                       net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    if (options.tls_verify) {
      d.tls->set_verify_mode(net::ssl::verify_peer);
      if (!options.tls_ca_file.empty())
        d.tls->load_verify_file(options.tls_ca_file, ec);
      else
        d.tls->set_default_verify_paths(ec);
      if (ec) {
        result.error = options.tls_ca_file.empty()
                           ? fmt::format("cannot load the system's CA certificates: {}", ec.message())
                           : fmt::format("cannot load CA certificates from '{}': {} (it must be a PEM file)",
                                         options.tls_ca_file, ec.message());
        return result;
      }
    } else {
      d.tls->set_verify_mode(net::ssl::verify_none);
    }
    auto& s = d.ws.emplace<TlsWs>(d.ioc, *d.tls);
    SSL* ssl = s.next_layer().native_handle();
    boost::system::error_code not_ip;
    net::ip::make_address(host, not_ip);
    // SNI names a host, never an address (RFC 6066 section 3).
    if (not_ip && !SSL_set_tlsext_host_name(ssl, host.c_str())) {
      result.error = fmt::format("cannot use '{}' as a TLS server name", host);
      return result;
    }
    if (options.tls_verify) {
      // OpenSSL checks the name (or address) in the certificate during the
      // chain's verification, and reports a mismatch in its verify result.
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (!(not_ip ? X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())
                   : X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()))) {
        result.error = fmt::format("cannot check the certificate against '{}'", host);
        return result;
      }
    }
  } else {
    d.ws.emplace<PlainWs>(d.ioc);
  }
  d.buffer.clear();
  d.reading = d.read_done = false;
  auto& stream = d.tcp();
  bool done = false;
  boost::system::error_code ec;

  tcp::resolver resolver(d.ioc);
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(host, port, [&](boost::system::error_code e, tcp::resolver::results_type r) {
    ec = e, endpoints = std::move(r), done = true;
  });
  if (!d.run_until([&] { return done; }, options.timeout) || ec) {
    result.error = ec ? ec.message() : "timed out resolving " + host;
    return result;
  }
  done = false;
  stream.expires_after(options.timeout);
  stream.async_connect(endpoints, [&](boost::system::error_code e, const tcp::endpoint&) { ec = e, done = true; });
  d.run_until([&] { return done; }, options.timeout + std::chrono::seconds(1));
  if (!done || ec) {
    result.error = ec ? ec.message() : "timed out connecting";
    return result;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  if (auto* tls = std::get_if<TlsWs>(&d.ws)) {
    done = false;
    stream.expires_after(options.timeout);
    tls->next_layer().async_handshake(net::ssl::stream_base::client, [&](boost::system::error_code e) {
      ec = e, done = true;
    });
    d.run_until([&] { return done; }, options.timeout + std::chrono::seconds(1));
    if (!done || ec) {
      result.error = tls_failure(ec ? ec : make_error_code(beast::error::timeout), tls->next_layer().native_handle(), host, port,
                                 result.certificate_error);
      return result;
    }
  }
  stream.expires_never();
  websocket::response_type res;
  done = false;
  d.with_ws([&](auto& ws) {
    ws.set_option(websocket::stream_base::timeout{options.timeout, websocket::stream_base::none(), false});
    ws.read_message_max(options.max_message_bytes);
    ws.auto_fragment(false);
    ws.set_option(websocket::stream_base::decorator([options](websocket::request_type& req) {
      for (auto& [k, v] : options.headers) req.set(k, v);
      if (!options.subprotocols.empty()) {
        std::string joined;
        for (auto& p : options.subprotocols) joined += (joined.empty() ? "" : ", ") + p;
        req.set(http::field::sec_websocket_protocol, joined);
      }
    }));
    ws.async_handshake(res, hostport, target, [&](boost::system::error_code e) { ec = e, done = true; });
  });
  d.run_until([&] { return done; }, options.timeout + std::chrono::seconds(1));
  result.status = static_cast<int>(res.result_int());
  if (!done || ec) {
    result.error = ec ? ec.message() : "timed out in the handshake";
    return result;
  }
  result.accepted = true;
  result.subprotocol = std::string(res[http::field::sec_websocket_protocol]);
  d.open = true;
  return result;
}

void WebsocketClient::send(std::string_view text) { impl_->write(text, false); }
void WebsocketClient::send_bytes(std::string_view bytes) { impl_->write(bytes, true); }

std::optional<ClientMessage> WebsocketClient::receive(std::chrono::milliseconds timeout) {
  auto& d = *impl_;
  if (!d.has_stream() || (!d.open && !d.reading)) return std::nullopt;
  if (!d.reading) {
    d.reading = true;
    d.read_done = false;
    d.start_read();
  }
  if (!d.run_until([&] { return d.read_done; }, timeout)) return std::nullopt;
  d.reading = false;
  if (d.read_ec) {
    d.mark_closed(d.read_ec);
    return std::nullopt;
  }
  ClientMessage m{!d.with_ws([](auto& s) { return s.got_text(); }), beast::buffers_to_string(d.buffer.data())};
  d.buffer.consume(d.buffer.size());
  return m;
}

void WebsocketClient::close(int code, std::string_view reason) {
  auto& d = *impl_;
  if (!d.open) return;
  boost::system::error_code ec;
  bool done = false;
  d.with_ws([&](auto& s) {
    s.async_close(websocket::close_reason(static_cast<websocket::close_code>(code), reason),
                  [&](boost::system::error_code e) { ec = e, done = true; });
  });
  d.run_until([&] { return done; }, d.options.timeout);
  // The server's close frame is read by the close operation (or a pending read).
  d.run_until([&] { return !d.reading || d.read_done; }, d.options.timeout);
  d.open = false;
  if (d.close_code == 0) d.close_code = d.reason().code ? static_cast<int>(d.reason().code) : code;
}

void WebsocketClient::abort() {
  auto& d = *impl_;
  if (!d.has_stream()) return;
  boost::system::error_code ec;
  d.tcp().socket().shutdown(tcp::socket::shutdown_both, ec);
  d.tcp().socket().close(ec);
  d.open = false;
  if (d.close_code == 0) d.close_code = 1006;
  // Let a pending read see the cancellation before anything else runs.
  d.run_until([&] { return !d.reading || d.read_done; }, std::chrono::seconds(1));
  d.reading = false;
}

bool WebsocketClient::is_open() const { return impl_->open; }
int WebsocketClient::close_code() const { return impl_->close_code; }
std::string WebsocketClient::close_reason() const { return impl_->close_reason; }

}  // namespace channels
