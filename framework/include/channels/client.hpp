#pragma once
// A small blocking WebSocket client (the counterpart of Python's
// websockets.connect), for tests, tools and apps that call other servers.
//
//   channels::WebsocketClient ws;
//   ws.connect("ws://127.0.0.1:8000/ws/echo/");
//   ws.send("hi");
//   auto reply = ws.receive();   // {text, "hi"}
//
// wss:// URLs use TLS (1.2 and later, OpenSSL) with the host name sent as
// SNI, and check the server's certificate by default: its chain against the
// system's CA store (or Options::tls_ca_file), and its name against the
// URL's host (a DNS name or an IP address).

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace channels {

struct ClientMessage {
  bool binary = false;
  std::string data;
};

struct HandshakeResult {
  bool accepted = false;
  int status = 0;            // HTTP status: 101 if accepted, else the refusal (403, 404...)
  std::string subprotocol;   // the one the server chose, if any
  std::string error;         // why it failed, if it did not get a response
  /// wss:// only: why the server's certificate failed verification, like
  /// "self-signed certificate" or "IP address mismatch" (empty if it did
  /// not); `error` then says that and what to do.
  std::string certificate_error;
};

class WebsocketClient {
 public:
  struct Options {
    std::vector<std::pair<std::string, std::string>> headers;
    std::vector<std::string> subprotocols;
    std::chrono::milliseconds timeout{10'000};
    std::size_t max_message_bytes = 64 * 1024 * 1024;
    /// wss:// only: CA certificates to trust (a PEM file, one or more
    /// certificates) instead of the system's store. For a server with a
    /// self-signed certificate, that certificate itself.
    std::string tls_ca_file;
    /// wss:// only: false skips every check of the server's certificate
    /// (chain and name). Anyone on the path can then read and change the
    /// traffic: for tests and development servers only.
    bool tls_verify = true;
  };

  WebsocketClient();
  ~WebsocketClient();
  WebsocketClient(WebsocketClient&&) noexcept;
  WebsocketClient& operator=(WebsocketClient&&) noexcept;

  /// Connects to ws://host:port/path?query or wss://host:port/path?query
  /// (ports 80 and 443 when omitted). Never throws for a refusal: the result
  /// says what the server answered, or why there was no answer.
  HandshakeResult connect(std::string_view url, Options options);
  HandshakeResult connect(std::string_view url);

  /// Throw std::system_error if the connection is not open.
  void send(std::string_view text);
  void send_bytes(std::string_view bytes);

  /// The next message, or nullopt if none came within `timeout` or the
  /// connection closed (then close_code() says how).
  std::optional<ClientMessage> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  /// Closing handshake: sends a close frame and waits for the server's.
  void close(int code = 1000, std::string_view reason = {});
  /// Drops the TCP connection without a closing handshake.
  void abort();

  bool is_open() const;
  /// The close code the server sent (0 if none yet, 1006 if the TCP
  /// connection ended without one).
  int close_code() const;
  std::string close_reason() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace channels
