#include <channels/routing.hpp>

#include <boost/regex.hpp>
#include <fmt/format.h>

#include <channels/detail/consumer_access.hpp>
#include <channels/errors.hpp>

namespace channels {

// ---- ConsumerApp, ProtocolTypeRouter ---------------------------------------

ConsumerApp::ConsumerApp(ConsumerFactory make, RouteOptions options)
    : make_(std::move(make)), options_(std::make_shared<const RouteOptions>(std::move(options))) {}

std::unique_ptr<Consumer> ConsumerApp::route(Scope&) const {
  auto c = make_();
  if (c) detail::ConsumerAccess::set_route_options(*c, options_);
  return c;
}

std::unique_ptr<Consumer> ProtocolTypeRouter::route(Scope& scope) const {
  auto it = apps_.find(scope.type);
  return it == apps_.end() ? nullptr : it->second->route(scope);
}

// ---- PathPattern -------------------------------------------------------------

struct PathPattern::Impl {
  boost::regex regex;
  std::vector<std::pair<std::string, std::string>> converters;  // kwarg -> converter (path() only)
  std::vector<std::string> names;  // named groups, in order
};

namespace {

struct Converter {
  std::string_view name;
  std::string_view regex;
};
constexpr Converter converters[] = {
    {"str", "[^/]+"},
    {"int", "[0-9]+"},
    {"slug", "[-a-zA-Z0-9_]+"},
    {"uuid", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"},
    {"path", ".+"},
};

bool is_identifier(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

std::string escape_regex(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string strip_slash(std::string_view p) {
  while (!p.empty() && p.front() == '/') p.remove_prefix(1);
  return std::string(p);
}

// Django's path() syntax to a regex, as django.urls.resolvers._route_to_regex does.
std::string path_to_regex(std::string_view pattern, bool endpoint,
                          std::vector<std::pair<std::string, std::string>>& convs) {
  std::string route = strip_slash(pattern);
  std::string out = "^";
  std::size_t i = 0;
  while (i < route.size()) {
    auto open = route.find('<', i);
    out += escape_regex(std::string_view(route).substr(i, open - i));
    if (open == std::string::npos) break;
    auto close = route.find('>', open);
    if (close == std::string::npos)
      throw ConfigError(fmt::format("route '{}' has a '<' without '>': write <converter:name>, "
                                    "like <str:room_name>",
                                    pattern));
    std::string_view inner = std::string_view(route).substr(open + 1, close - open - 1);
    std::string_view conv = "str", name = inner;
    if (auto colon = inner.find(':'); colon != std::string_view::npos) {
      conv = inner.substr(0, colon);
      name = inner.substr(colon + 1);
    }
    if (!is_identifier(name))
      throw ConfigError(fmt::format("route '{}': '{}' is not a valid parameter name (use letters, "
                                    "digits and '_', not starting with a digit)",
                                    pattern, name));
    const Converter* found = nullptr;
    for (const auto& c : converters)
      if (c.name == conv) found = &c;
    if (!found)
      throw ConfigError(fmt::format("route '{}': unknown path converter '{}'; use one of str, int, "
                                    "slug, uuid, path, or a re_path() for anything else",
                                    pattern, conv));
    for (const auto& [n, _] : convs)
      if (n == name)
        throw ConfigError(fmt::format("route '{}' uses the parameter name '{}' twice", pattern, name));
    convs.emplace_back(std::string(name), std::string(conv));
    out += fmt::format("(?<{}>{})", name, found->regex);
    i = close + 1;
  }
  if (endpoint) out += "\\z";
  return out;
}

// Python's regex dialect to Boost's: named groups, back-references, \Z.
std::string python_to_boost(std::string_view pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.substr(i, 4) == "(?P<") {
      out += "(?<";
      i += 3;
    } else if (pattern.substr(i, 4) == "(?P=") {
      auto close = pattern.find(')', i);
      if (close == std::string_view::npos) {
        out += pattern.substr(i);
        break;
      }
      out += "\\k<";
      out += pattern.substr(i + 4, close - i - 4);
      out += ">";
      i = close;
    } else if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      out += pattern[i + 1] == 'Z' ? std::string("\\z") : std::string(pattern.substr(i, 2));
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

PathPattern::PathPattern(Kind kind, std::string_view pattern, bool endpoint)
    : kind_(kind), source_(pattern), impl_(std::make_unique<Impl>()) {
  std::string re;
  if (kind == Kind::path) {
    re = path_to_regex(pattern, endpoint, impl_->converters);
  } else {
    // Channels strips the path's leading '/', so "^/ws/..." could never match;
    // accept it anyway, as Django's admins often write it.
    std::string p(pattern);
    if (p.rfind("^/", 0) == 0) p.erase(1, 1);
    re = python_to_boost(p);
  }
  try {
    // no_mod_m: '$' means the end of the path, as in Python, not of a line.
    impl_->regex.assign(re, boost::regex::perl | boost::regex::no_mod_m);
  } catch (const boost::regex_error& e) {
    throw ConfigError(fmt::format("route '{}' is not a valid regular expression: {}", pattern, e.what()));
  }
  // Named groups, skipping look-behinds "(?<=" and "(?<!" and escaped parens.
  for (std::size_t i = 0; i + 3 < re.size(); ++i) {
    if (re[i] == '\\') {
      ++i;
      continue;
    }
    if (re.compare(i, 3, "(?<") == 0 && re[i + 3] != '=' && re[i + 3] != '!') {
      auto end = re.find('>', i + 3);
      if (end == std::string::npos) continue;
      std::string name = re.substr(i + 3, end - i - 3);
      // Python's re takes only identifiers here; Boost takes any bytes,
      // which would become url_route keys that are not even valid UTF-8.
      if (!is_identifier(name))
        throw ConfigError(fmt::format("route '{}': group name '{}' is not a name (letters, digits and '_', "
                                      "not starting with a digit)",
                                      pattern, name));
      impl_->names.push_back(std::move(name));
    }
  }
}

PathPattern::~PathPattern() = default;
PathPattern::PathPattern(PathPattern&&) noexcept = default;
PathPattern& PathPattern::operator=(PathPattern&&) noexcept = default;

std::optional<PathPattern::Match> PathPattern::match(std::string_view path) const {
  boost::match_results<std::string_view::const_iterator> m;
  bool ok = kind_ == Kind::path
                ? boost::regex_search(path.begin(), path.end(), m, impl_->regex,
                                      boost::match_continuous)
                : boost::regex_search(path.begin(), path.end(), m, impl_->regex);
  if (!ok) return std::nullopt;
  Match out;
  out.consumed = static_cast<std::size_t>(m[0].second - path.begin());
  if (kind_ == Kind::path) {
    for (const auto& [name, conv] : impl_->converters) {
      std::string value = m[name].str();
      if (conv == "int") {
        // Django converts <int:x> to a number; huge values stay text.
        try {
          out.kwargs[name] = std::stoll(value);
        } catch (const std::out_of_range&) {
          out.kwargs[name] = value;
        }
      } else {
        out.kwargs[name] = value;
      }
    }
  } else {
    // Django: named groups become kwargs; if there are none, groups are args.
    if (impl_->names.empty()) {
      for (std::size_t i = 1; i < m.size(); ++i)
        if (m[i].matched) out.args.push_back(m[i].str());
    } else {
      for (const auto& name : impl_->names)
        if (m[name].matched) out.kwargs[name] = m[name].str();
    }
  }
  return out;
}

// ---- URLRouter -----------------------------------------------------------------

namespace {
bool is_router(const ApplicationPtr& app) {
  return dynamic_cast<const URLRouter*>(app.get()) != nullptr;
}
}  // namespace

Route path(std::string_view pattern, ApplicationPtr app) {
  bool endpoint = !is_router(app);
  return Route{std::make_shared<const PathPattern>(PathPattern::Kind::path, pattern, endpoint),
               std::move(app)};
}

Route re_path(std::string_view pattern, ApplicationPtr app) {
  bool endpoint = !is_router(app);
  return Route{std::make_shared<const PathPattern>(PathPattern::Kind::re_path, pattern, endpoint),
               std::move(app)};
}

std::unique_ptr<Consumer> URLRouter::route(Scope& scope) const {
  // The outermost router starts from the whole path, without its leading '/'.
  std::string remaining = scope.path_remaining ? *scope.path_remaining : strip_slash(scope.path);
  for (const auto& r : routes_) {
    auto m = r.pattern->match(remaining);
    if (!m) continue;
    Scope inner = scope;
    inner.path_remaining = remaining.substr(m->consumed);
    for (auto& a : m->args) inner.url_route.args.push_back(std::move(a));
    for (auto& [k, v] : m->kwargs.items()) inner.url_route.kwargs[k] = v;
    if (auto consumer = r.app->route(inner)) {
      scope = std::move(inner);
      return consumer;
    }
  }
  return nullptr;
}

}  // namespace channels
