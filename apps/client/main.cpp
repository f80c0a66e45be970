// cppchannels-client URL: a terminal WebSocket client. Prints every message
// the server sends, one per line, and sends each line typed (or piped in).
// With --json each line goes out as {"message": LINE}, the chat's protocol.
// wss:// URLs check the server's certificate against the system's CA store,
// or the CAs in --ca-file; --insecure skips the check (test servers only).
//
//   cppchannels-client --json ws://127.0.0.1:8000/ws/chat/lobby/
//   cppchannels-client --ca-file cert.pem wss://127.0.0.1:8443/ws/chat/lobby/

#include <poll.h>
#include <unistd.h>

#include <iostream>
#include <system_error>
#include <string>

#include <CLI/CLI.hpp>

#include <channels/client.hpp>
#include <channels/message.hpp>

namespace {

void print(const channels::ClientMessage& m) {
  if (m.binary)
    std::cout << "<binary message, " << m.data.size() << " bytes>\n";
  else
    std::cout << m.data << "\n";
  std::cout.flush();
}

// Says how the server ended it; 0 for a normal close.
int report_close(const channels::WebsocketClient& ws) {
  int code = ws.close_code();
  auto reason = ws.close_reason();
  std::cerr << "connection closed by the server: code " << code;
  if (!reason.empty()) std::cerr << " (" << reason << ")";
  if (code == 1006) std::cerr << " (no close frame: the connection dropped)";
  std::cerr << "\n";
  return code == 1000 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Talks to a WebSocket server from the terminal: prints each message received, sends each line typed."};
  std::string url;
  bool json = false;
  std::vector<std::string> headers, subprotocols;
  double linger = 1.0;
  std::string ca_file;
  bool insecure = false;
  cli.add_option("url", url, "ws://host:port/path, or wss://host:port/path for TLS")->required();
  cli.add_flag("--json", json, "Send each line as {\"message\": LINE}");
  cli.add_option("-H,--header", headers, "Extra request header, 'Name: value' (repeatable)");
  cli.add_option("--subprotocol", subprotocols, "Subprotocol to offer (repeatable)");
  cli.add_option("--linger", linger, "Seconds to keep printing after the input ends, then close")
      ->capture_default_str();
  auto* ca = cli.add_option("--ca-file", ca_file,
                            "wss://: trust the CA certificates in this PEM file instead of the system's "
                            "(for a self-signed server, its certificate)")
                 ->check(CLI::ExistingFile);
  cli.add_flag("--insecure", insecure,
               "wss://: do not verify the server's certificate (anyone on the path can read and change the "
               "traffic: test servers only)")
      ->excludes(ca);
  CLI11_PARSE(cli, argc, argv);

  channels::WebsocketClient::Options options;
  for (const auto& h : headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos) {
      std::cerr << "error: --header '" << h << "' needs the form 'Name: value'\n";
      return 2;
    }
    auto value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    options.headers.emplace_back(h.substr(0, colon), value);
  }
  options.subprotocols = subprotocols;
  options.tls_ca_file = ca_file;
  options.tls_verify = !insecure;

  channels::WebsocketClient ws;
  auto hs = ws.connect(url, options);
  if (!hs.accepted) {
    if (hs.status)
      std::cerr << "error: the server refused the WebSocket handshake for " << url << " with HTTP " << hs.status
                << (hs.status == 404   ? " (no WebSocket route for that path)"
                    : hs.status == 403 ? " (the consumer closed before accepting)"
                                       : "")
                << "\n";
    else if (!hs.certificate_error.empty())
      std::cerr << "error: cannot connect to " << url << ": the server's TLS certificate failed verification ("
                << hs.certificate_error << ")\n"
                << (hs.certificate_error.find("mismatch") != std::string::npos
                        ? "  it was issued for other names: use a host name or address that it names"
                        : "  give the CA that signed it (for a self-signed server, the certificate itself) with "
                          "--ca-file FILE.pem")
                << ", or, for a test server only, skip the check with --insecure\n";
    else
      std::cerr << "error: cannot connect to " << url << ": " << hs.error << "\n";
    return 1;
  }
  if (!hs.subprotocol.empty()) std::cerr << "connected (subprotocol " << hs.subprotocol << ")\n";

  // One thread: poll stdin without waiting, then wait a little for a message.
  // (The client's receive() keeps its read pending across timeouts.)
  std::string pending;
  bool input_open = true;
  auto input_closed_at = std::chrono::steady_clock::now();
  for (;;) {
    if (input_open) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      while (input_open && ::poll(&p, 1, 0) > 0) {
        char buf[4096];
        auto n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) {
          input_open = false;
          input_closed_at = std::chrono::steady_clock::now();
          if (!pending.empty()) pending += '\n';  // a last line without a newline still goes
        } else {
          pending.append(buf, static_cast<std::size_t>(n));
        }
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
          std::string line = pending.substr(0, nl);
          pending.erase(0, nl + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          if (!ws.is_open()) break;
          try {
            ws.send(json ? channels::Json{{"message", line}}.dump() : line);
          } catch (const std::system_error&) {
            break;  // closed under us: the receive below reports how
          }
        }
      }
    } else if (std::chrono::steady_clock::now() - input_closed_at > std::chrono::duration<double>(linger)) {
      ws.close(1000);
      return 0;
    }
    auto m = ws.receive(std::chrono::milliseconds(50));
    if (m) {
      print(*m);
    } else if (!ws.is_open()) {
      return report_close(ws);
    }
  }
}
