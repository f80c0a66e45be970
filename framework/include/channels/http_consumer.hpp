#pragma once
// HttpConsumer: plain request/response on the same port as the WebSockets.
//
//   struct Hello : channels::HttpConsumer {
//     void on_request(const channels::HttpRequest&) override {
//       send_response(200, "hello", {{"Content-Type", "text/plain"}});
//     }
//   };

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <channels/consumer.hpp>

namespace channels {

namespace detail {
class HttpTransport;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;
  std::string body;
};

class HttpConsumer : public Consumer {
 public:
  /// Handle one request; call send_response() once, now or later (for
  /// instance from a layer message handler).
  virtual void on_request(const HttpRequest& request) = 0;

  void send_response(int status, std::string body, Headers headers = {});
  bool responded() const { return responded_; }

 private:
  friend struct detail::ConsumerAccess;
  std::shared_ptr<detail::HttpTransport> transport_;
  bool responded_ = false;
};

/// Serves files below a root directory (`options: {root: DIR}`, relative to
/// routing.yaml) from the route's `path` kwarg. Refuses `..`, absolute paths
/// and symlinks that lead out of the root with 404, never with the file.
class StaticFiles : public HttpConsumer {
 public:
  void on_request(const HttpRequest& request) override;
};

/// The MIME type for a file name's extension ("application/octet-stream" if unknown).
std::string_view mime_type(std::string_view filename);

}  // namespace channels
