#include <channels/origin_validator.hpp>

#include <algorithm>
#include <cctype>

#include <channels/denier.hpp>
#include <channels/log.hpp>

namespace channels {

namespace {

struct ParsedOrigin {
  std::string scheme;  // empty in a pattern that gives only a host
  std::string host;    // lower-case, IPv6 without brackets
  int port = 0;        // 0: not given
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int default_port(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

// "scheme://host[:port]" (an Origin) or "host[:port]" (a pattern); nullopt
// if there is no host (the Origin "null", sent by sandboxed pages and file://).
std::optional<ParsedOrigin> parse(std::string_view s) {
  ParsedOrigin p;
  if (auto sep = s.find("://"); sep != std::string_view::npos) {
    p.scheme = lower(s.substr(0, sep));
    s.remove_prefix(sep + 3);
  }
  s = s.substr(0, s.find('/'));
  std::string_view port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    p.host = lower(s.substr(1, close - 1));
    if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    p.host = lower(s.substr(0, colon));
    if (colon != std::string_view::npos) port = s.substr(colon + 1);
  }
  if (p.host.empty()) return std::nullopt;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      return std::nullopt;
    p.port = std::stoi(std::string(port));
  }
  return p;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// Django's is_same_domain, plus "*.example.com" for subdomains only.
bool same_domain(std::string_view host, std::string_view pattern) {
  if (pattern.empty()) return false;
  if (pattern.substr(0, 2) == "*.") return host.size() > pattern.size() - 1 && ends_with(host, pattern.substr(1));
  if (pattern.front() == '.') return ends_with(host, pattern) || host == pattern.substr(1);
  return host == pattern;
}

bool matches(const ParsedOrigin& origin, std::string_view pattern) {
  if (pattern == "*") return true;
  auto p = parse(pattern);
  if (!p) return false;
  if (p->scheme.empty()) return same_domain(origin.host, p->host);
  int origin_port = origin.port ? origin.port : default_port(origin.scheme);
  int pattern_port = p->port ? p->port : default_port(p->scheme);
  return p->scheme == origin.scheme && origin_port == pattern_port && same_domain(origin.host, p->host);
}

}  // namespace

bool origin_allowed(std::optional<std::string_view> origin, const std::vector<std::string>& patterns,
                    bool allow_missing) {
  bool any = std::find(patterns.begin(), patterns.end(), "*") != patterns.end();
  if (!origin) return any || allow_missing;
  auto parsed = parse(*origin);
  if (!parsed) return any;
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return matches(*parsed, p); });
}

OriginValidator::OriginValidator(ApplicationPtr app, std::vector<std::string> allowed_origins, bool allow_missing)
    : app_(std::move(app)), allowed_(std::move(allowed_origins)), allow_missing_(allow_missing) {}

std::unique_ptr<Consumer> OriginValidator::route(Scope& scope) const {
  if (scope.type != "websocket") return app_->route(scope);
  auto origin = scope.header("origin");
  if (!origin_allowed(origin, allowed_, allow_missing_)) {
    log().warn("refusing the WebSocket for {} from {}: Origin '{}' is not allowed (allowed_origins)", scope.path,
               scope.client.host, origin ? *origin : "(none)");
    return std::make_unique<WebsocketDenier>();
  }
  return app_->route(scope);
}

}  // namespace channels
