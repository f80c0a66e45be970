#include <channels/http_consumer.hpp>

#include <fstream>
#include <sstream>
#include <system_error>

#include <channels/detail/transport.hpp>
#include <channels/log.hpp>

namespace channels {

void HttpConsumer::send_response(int status, std::string body, Headers headers) {
  if (!on_strand()) {
    post_to_strand([this, status, body = std::move(body), headers = std::move(headers)]() mutable {
      send_response(status, std::move(body), std::move(headers));
    });
    return;
  }
  if (responded_ || !transport_) {
    log().warn("send_response() called twice for {} {}: the second response was ignored",
               scope().method, scope().path);
    return;
  }
  responded_ = true;
  transport_->respond(detail::HttpResponse{status, std::move(headers), std::move(body)});
}

std::string_view mime_type(std::string_view filename) {
  static const std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"}, {".svg", "image/svg+xml"},
      {".png", "image/png"},                 {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},               {".gif", "image/gif"},
      {".ico", "image/vnd.microsoft.icon"},  {".webp", "image/webp"},
      {".wasm", "application/wasm"},         {".woff2", "font/woff2"},
  };
  auto dot = filename.rfind('.');
  if (dot != std::string_view::npos) {
    std::string ext(filename.substr(dot));
    for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& [e, t] : types)
      if (e == ext) return t;
  }
  return "application/octet-stream";
}

namespace {

// Files above this size are not served from memory.
constexpr std::uintmax_t max_static_file = 16 * 1024 * 1024;

// True if `p` (canonical) lies inside `root` (canonical).
bool inside(const std::filesystem::path& root, const std::filesystem::path& p) {
  auto r = root.begin(), q = p.begin();
  for (; r != root.end(); ++r, ++q)
    if (q == p.end() || *r != *q) return false;
  return true;
}

}  // namespace

void StaticFiles::on_request(const HttpRequest& request) {
  namespace fs = std::filesystem;
  Headers text{{"Content-Type", "text/plain; charset=utf-8"}};
  if (request.method != "GET" && request.method != "HEAD") {
    send_response(405, "405 Method Not Allowed\n", {{"Content-Type", "text/plain; charset=utf-8"}, {"Allow", "GET, HEAD"}});
    return;
  }
  auto root_opt = options().find("root");
  if (root_opt == options().end() || !root_opt->is_string()) {
    log().error("channels.StaticFiles on {} has no `options: {{root: DIR}}` in routing.yaml", scope().path);
    send_response(500, "500 Internal Server Error\n", text);
    return;
  }
  std::string rel = scope().kwarg("path");
  // Refuse what could climb out before touching the file system: absolute
  // paths, '..' segments, backslashes and NULs.
  fs::path relpath(rel);
  bool bad = rel.empty() || relpath.is_absolute() || rel.find('\0') != std::string::npos ||
             rel.find('\\') != std::string::npos;
  for (const auto& part : relpath)
    if (part == "..") bad = true;
  std::error_code ec;
  fs::path root = fs::canonical(resolve_path(root_opt->get<std::string>()), ec);
  if (ec) {
    log().error("channels.StaticFiles root '{}' does not exist ({})",
                resolve_path(root_opt->get<std::string>()).string(), ec.message());
    send_response(500, "500 Internal Server Error\n", text);
    return;
  }
  fs::path file;
  if (!bad) {
    // canonical() resolves symlinks, so a link that leads outside fails the test.
    file = fs::canonical(root / relpath, ec);
    bad = ec || !inside(root, file) || !fs::is_regular_file(file, ec);
  }
  if (bad) {
    send_response(404, "404 Not Found\n", text);
    return;
  }
  auto size = fs::file_size(file, ec);
  if (ec || size > max_static_file) {
    send_response(404, "404 Not Found\n", text);
    return;
  }
  std::ifstream in(file, std::ios::binary);
  std::ostringstream body;
  body << in.rdbuf();
  send_response(200, request.method == "HEAD" ? std::string{} : std::move(body).str(),
                {{"Content-Type", std::string(mime_type(file.filename().string()))},
                 {"Cache-Control", "no-cache"}});
}

}  // namespace channels
