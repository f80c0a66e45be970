#pragma once
// What a consumer needs from the connection under it. The server's sessions
// implement it over sockets; a test communicator can implement it in memory.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <channels/send_status.hpp>

namespace channels::detail {

/// One outgoing WebSocket message. The payload is shared so that a group
/// fan-out can hand the same bytes to every member.
struct OutFrame {
  std::shared_ptr<const std::string> payload;
  bool binary = false;
};

class WebsocketTransport {
 public:
  virtual ~WebsocketTransport() = default;
  // All three are called on the connection's strand.
  virtual void accept(std::string subprotocol) = 0;
  virtual SendStatus send(OutFrame frame) = 0;
  virtual void close(int code, std::string reason) = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual void respond(HttpResponse response) = 0;  // on the strand, once
};

}  // namespace channels::detail
