#include <channels/config.hpp>

#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <channels/errors.hpp>
#include <channels/layers/in_memory.hpp>
#include <channels/layers/redis.hpp>
#include <channels/layers/redis_pubsub.hpp>
#include <channels/log.hpp>
#include <channels/origin_validator.hpp>

namespace channels {

namespace {

namespace fs = std::filesystem;

// A routing file is a few KiB. Reading stops past this, so that a path to
// /dev/zero or a log file fails with a reason instead of eating memory; the
// file may still be a pipe (--routing <(envsubst < routing.yaml)).
constexpr std::size_t max_routing_file_bytes = 4 * 1024 * 1024;

// The file's text, or why not (empty `error` when it was read).
std::string read_routing_file(const fs::path& file, std::string& error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::error_code(errno, std::generic_category()).message();
    return {};
  }
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > max_routing_file_bytes) {
      error = fmt::format("it is over {} MiB: is it the right file?", max_routing_file_bytes >> 20);
      return {};
    }
  }
  if (in.bad()) error = "read error";
  return text;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// "; did you mean 'port'?" when a known word is close enough.
std::string suggestion(std::string_view word, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& k : known) {
    auto d = edit_distance(word, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? std::string{} : fmt::format("; did you mean '{}'?", best);
}

// Reads one routing file; every error names it and the line.
class Loader {
 public:
  Loader(const fs::path& file, const Registry& registry, int depth = 0)
      : file_(file), registry_(registry), depth_(depth) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    if (node.IsDefined() && node.Mark().line >= 0)
      throw ConfigError(fmt::format("{}:{}: {}", file_.string(), node.Mark().line + 1, what));
    throw ConfigError(fmt::format("{}: {}", file_.string(), what));
  }

  YAML::Node parse(std::string_view text) const {
    try {
      return YAML::Load(std::string(text));
    } catch (const YAML::ParserException& e) {
      throw ConfigError(fmt::format("{}:{}:{}: not valid YAML: {} (check the indentation and quoting "
                                    "on that line or the one before)",
                                    file_.string(), e.mark.line + 1, e.mark.column + 1, e.msg));
    }
  }

  void check_keys(const YAML::Node& map, std::string_view section, const std::vector<std::string>& known) const {
    if (!map.IsMap()) fail(map, fmt::format("`{}` must be a mapping of key: value lines", section));
    for (const auto& kv : map) {
      if (!kv.first.IsScalar())
        fail(kv.first, fmt::format("a key in `{}` is a list or a mapping; keys are plain names (known keys: {})",
                                   section, fmt::join(known, ", ")));
      auto key = kv.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end())
        fail(kv.first, fmt::format("unknown key '{}' in `{}`{} (known keys: {})", key, section,
                                   suggestion(key, known), fmt::join(known, ", ")));
    }
  }

  template <class T>
  T scalar(const YAML::Node& node, std::string_view what, std::string_view expected) const {
    if (!node.IsScalar()) fail(node, fmt::format("`{}` must be {}", what, expected));
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      fail(node, fmt::format("`{}` must be {}, not '{}'", what, expected, node.Scalar()));
    }
  }

  std::chrono::milliseconds seconds(const YAML::Node& node, std::string_view what) const {
    double s = scalar<double>(node, what, "a number of seconds, like 10 or 0.5");
    if (s < 0 || s > 1e7) fail(node, fmt::format("`{}` must be between 0 and 10000000 seconds", what));
    return std::chrono::milliseconds(static_cast<long long>(s * 1000));
  }

  std::size_t bytes(const YAML::Node& node, std::string_view what) const {
    std::string expected = "a size in bytes, like 65536, 64KiB or 1MiB";
    if (!node.IsScalar()) fail(node, fmt::format("`{}` must be {}", what, expected));
    std::string s = node.Scalar();
    std::size_t pos = 0;
    unsigned long long n = 0;
    try {
      n = std::stoull(s, &pos);
    } catch (const std::exception&) {
      fail(node, fmt::format("`{}` must be {}, not '{}'", what, expected, s));
    }
    std::string unit = s.substr(pos);
    while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
    if (unit == "KiB" || unit == "K" || unit == "KB") n <<= 10;
    else if (unit == "MiB" || unit == "M" || unit == "MB") n <<= 20;
    else if (unit == "GiB" || unit == "G" || unit == "GB") n <<= 30;
    else if (!unit.empty() && unit != "B") fail(node, fmt::format("`{}`: unknown unit '{}' ({})", what, unit, expected));
    if (n == 0) fail(node, fmt::format("`{}` must be more than 0", what));
    return n;
  }

  // A count where 0 means "no limit" (or "automatic").
  std::size_t count(const YAML::Node& node, std::string_view what) const {
    long long v = scalar<long long>(node, what, "a whole number (0: no limit)");
    if (v < 0) fail(node, fmt::format("`{}` must be 0 or more", what));
    return static_cast<std::size_t>(v);
  }

  std::vector<std::string> origins(const YAML::Node& node, std::string_view what) const {
    if (!node.IsSequence())
      fail(node, fmt::format("`{}` must be a list of origins, like [localhost, .example.com, "
                             "\"https://app.example.com\"] (or [\"*\"] for any)",
                             what));
    std::vector<std::string> out;
    for (const auto& o : node) {
      auto v = scalar<std::string>(o, std::string(what) + "[]", "a host or origin");
      if (v.empty()) fail(o, fmt::format("`{}` may not hold an empty origin", what));
      out.push_back(std::move(v));
    }
    return out;
  }

  void load_server(const YAML::Node& n, ServerOptions& o) const {
    check_keys(n, "server",
               {"bind", "port", "reuse_port", "threads", "max_header_bytes", "max_body_bytes", "handshake_timeout",
                "http_keepalive_timeout", "idle_timeout", "keepalive_pings", "max_message_bytes",
                "send_queue_max_bytes", "send_queue_policy", "drain_timeout", "max_connections",
                "max_connections_per_ip", "retry_after", "allowed_origins", "allow_missing_origin",
                "permessage_deflate", "metrics_path", "access_log"});
    if (n["bind"]) o.bind = scalar<std::string>(n["bind"], "server.bind", "an IP address like 127.0.0.1");
    if (n["port"]) {
      int p = scalar<int>(n["port"], "server.port", "a port number from 0 to 65535");
      if (p < 0 || p > 65535) fail(n["port"], "`server.port` must be from 0 to 65535");
      o.port = static_cast<std::uint16_t>(p);
    }
    if (n["threads"]) {
      int t = scalar<int>(n["threads"], "server.threads", "a number of threads (0: one per core)");
      if (t < 0 || t > 1024) fail(n["threads"], "`server.threads` must be from 0 (one per core) to 1024");
      o.threads = static_cast<unsigned>(t);
    }
    if (n["max_header_bytes"]) o.max_header_bytes = bytes(n["max_header_bytes"], "server.max_header_bytes");
    if (n["max_body_bytes"]) o.max_body_bytes = bytes(n["max_body_bytes"], "server.max_body_bytes");
    if (n["max_message_bytes"]) o.max_message_bytes = bytes(n["max_message_bytes"], "server.max_message_bytes");
    if (n["handshake_timeout"]) o.handshake_timeout = seconds(n["handshake_timeout"], "server.handshake_timeout");
    if (n["http_keepalive_timeout"])
      o.http_keepalive_timeout = seconds(n["http_keepalive_timeout"], "server.http_keepalive_timeout");
    if (n["idle_timeout"]) o.idle_timeout = seconds(n["idle_timeout"], "server.idle_timeout");
    if (n["drain_timeout"]) o.drain_timeout = seconds(n["drain_timeout"], "server.drain_timeout");
    if (n["reuse_port"]) o.reuse_port = scalar<bool>(n["reuse_port"], "server.reuse_port", "true or false");
    if (n["keepalive_pings"]) o.keepalive_pings = scalar<bool>(n["keepalive_pings"], "server.keepalive_pings", "true or false");
    if (n["permessage_deflate"]) load_deflate(n["permessage_deflate"], o.permessage_deflate);
    if (n["send_queue_max_bytes"]) o.send_queue_max_bytes = bytes(n["send_queue_max_bytes"], "server.send_queue_max_bytes");
    if (n["max_connections"]) o.max_connections = count(n["max_connections"], "server.max_connections");
    if (n["max_connections_per_ip"])
      o.max_connections_per_ip = count(n["max_connections_per_ip"], "server.max_connections_per_ip");
    if (n["retry_after"])
      o.retry_after = std::chrono::duration_cast<std::chrono::seconds>(seconds(n["retry_after"], "server.retry_after"));
    if (n["allowed_origins"]) o.allowed_origins = origins(n["allowed_origins"], "server.allowed_origins");
    if (n["allow_missing_origin"])
      o.allow_missing_origin = scalar<bool>(n["allow_missing_origin"], "server.allow_missing_origin", "true or false");
    if (n["metrics_path"]) {
      o.metrics_path = scalar<std::string>(n["metrics_path"], "server.metrics_path", "a path like /metrics");
      if (!o.metrics_path.empty() && o.metrics_path.front() != '/')
        fail(n["metrics_path"], fmt::format("`server.metrics_path` must start with '/': write /{}", o.metrics_path));
    }
    if (n["access_log"])
      o.access_log = scalar<std::string>(n["access_log"], "server.access_log", "a file name, or - for stdout");
    if (n["send_queue_policy"]) {
      constexpr const char* allowed =
          "close (close with 1008), close_try_again (close with 1013, Try Again Later) or drop (drop the message)";
      auto p = scalar<std::string>(n["send_queue_policy"], "server.send_queue_policy", allowed);
      if (p == "close") o.send_queue_policy = SendQueuePolicy::close;
      else if (p == "close_try_again") o.send_queue_policy = SendQueuePolicy::close_try_again;
      else if (p == "drop") o.send_queue_policy = SendQueuePolicy::drop;
      else fail(n["send_queue_policy"], fmt::format("`server.send_queue_policy` must be {}, not '{}'{}", allowed, p,
                                                     suggestion(p, {"close", "close_try_again", "drop"})));
    }
  }

  // Certificate and key paths are relative to this file, and checked now so
  // that a typo stops start-up with the line to fix.
  void load_tls(const YAML::Node& n, ServerOptions& o) const {
    check_keys(n, "tls", {"cert", "key"});
    if (!n["cert"] || !n["key"]) fail(n, "`tls:` needs both `cert:` and `key:` (PEM files, relative to this file)");
    auto file = [&](const char* key) {
      fs::path p = scalar<std::string>(n[key], std::string("tls.") + key, "a PEM file path");
      if (p.is_relative()) p = file_.parent_path() / p;
      std::error_code ec;
      if (!fs::is_regular_file(p, ec))
        fail(n[key], fmt::format("`tls.{}`: no such file '{}' (paths are relative to {})", key, p.string(),
                                 file_.filename().string()));
      return p.string();
    };
    o.tls_cert = file("cert");
    o.tls_key = file("key");
  }

  int ranged(const YAML::Node& node, std::string_view what, int lo, int hi) const {
    int v = scalar<int>(node, what, fmt::format("a number from {} to {}", lo, hi));
    if (v < lo || v > hi) fail(node, fmt::format("`{}` must be from {} to {}, not {}", what, lo, hi, v));
    return v;
  }

  // `permessage_deflate: true`, or a mapping with `enabled:` and zlib's sizes.
  void load_deflate(const YAML::Node& n, DeflateOptions& d) const {
    if (n.IsScalar()) {
      d.enabled = scalar<bool>(n, "server.permessage_deflate", "true, false or a mapping like {enabled: true, window_bits: 12}");
      return;
    }
    check_keys(n, "server.permessage_deflate", {"enabled", "window_bits", "mem_level", "compression_level", "min_bytes"});
    d.enabled = true;
    if (n["enabled"]) d.enabled = scalar<bool>(n["enabled"], "server.permessage_deflate.enabled", "true or false");
    if (n["window_bits"]) d.window_bits = ranged(n["window_bits"], "server.permessage_deflate.window_bits", 9, 15);
    if (n["mem_level"]) d.mem_level = ranged(n["mem_level"], "server.permessage_deflate.mem_level", 1, 9);
    if (n["compression_level"])
      d.compression_level = ranged(n["compression_level"], "server.permessage_deflate.compression_level", 0, 9);
    if (n["min_bytes"]) d.min_bytes = bytes(n["min_bytes"], "server.permessage_deflate.min_bytes");
  }

  void load_layer(const YAML::Node& n, LayerConfig& c) const {
    check_keys(n, "channel_layer", {"backend", "capacity", "channel_capacity", "consumer_buffer", "expiry", "group_expiry",
                                    "hosts", "prefix", "symmetric_encryption_keys"});
    if (n["backend"]) {
      c.backend = scalar<std::string>(n["backend"], "channel_layer.backend", "memory, redis or redis-pubsub");
      std::vector<std::string> known{"memory", "redis", "redis-pubsub"};
      if (std::find(known.begin(), known.end(), c.backend) == known.end())
        fail(n["backend"], fmt::format("unknown channel_layer.backend '{}'{}: use memory, redis or redis-pubsub",
                                       c.backend, suggestion(c.backend, known)));
    }
    if (n["capacity"]) {
      int cap = scalar<int>(n["capacity"], "channel_layer.capacity", "a number of messages per channel");
      if (cap < 1) fail(n["capacity"], "`channel_layer.capacity` must be at least 1");
      c.options.capacity = static_cast<std::size_t>(cap);
    }
    if (n["consumer_buffer"]) {
      int b = scalar<int>(n["consumer_buffer"], "channel_layer.consumer_buffer", "a number of messages");
      if (b < 1) fail(n["consumer_buffer"], "`channel_layer.consumer_buffer` must be at least 1");
      c.options.consumer_buffer = static_cast<std::size_t>(b);
    }
    if (n["expiry"]) c.options.expiry = seconds(n["expiry"], "channel_layer.expiry");
    if (n["group_expiry"]) c.options.group_expiry = seconds(n["group_expiry"], "channel_layer.group_expiry");
    if (n["prefix"]) c.prefix = scalar<std::string>(n["prefix"], "channel_layer.prefix", "a key prefix like asgi");
    if (n["hosts"]) {
      if (!n["hosts"].IsSequence()) fail(n["hosts"], "`channel_layer.hosts` must be a list, like [redis://127.0.0.1:6379]");
      for (const auto& h : n["hosts"]) c.hosts.push_back(scalar<std::string>(h, "channel_layer.hosts[]", "a URL"));
    }
    if (const auto& cc = n["channel_capacity"]) {
      if (!cc.IsMap())
        fail(cc, "`channel_layer.channel_capacity` must be a mapping of channel name patterns to capacities, "
                 "like {\"http.response!*\": 10, \"websocket.send!*\": 20}");
      // In file order: as in channels_redis, the first pattern that matches wins.
      for (const auto& kv : cc) {
        auto pattern = scalar<std::string>(kv.first, "channel_layer.channel_capacity key", "a channel name pattern");
        int cap = scalar<int>(kv.second, "channel_layer.channel_capacity['" + pattern + "']", "a number of messages");
        if (cap < 1) fail(kv.second, fmt::format("`channel_layer.channel_capacity['{}']` must be at least 1", pattern));
        c.channel_capacity.emplace_back(pattern, static_cast<std::size_t>(cap));
      }
    }
    if (const auto& keys = n["symmetric_encryption_keys"]) {
      // channels_redis refuses a bare string too: it would be read as a list of characters.
      if (!keys.IsSequence())
        fail(keys, "`channel_layer.symmetric_encryption_keys` must be a list of keys, even for one: "
                   "[\"your-secret\"] (the first encrypts, any of them decrypts)");
      for (const auto& k : keys) {
        auto key = scalar<std::string>(k, "channel_layer.symmetric_encryption_keys[]", "a secret string");
        if (key.empty()) fail(k, "`channel_layer.symmetric_encryption_keys` may not hold an empty key");
        c.symmetric_encryption_keys.push_back(std::move(key));
      }
    }
  }

  ApplicationPtr load_routes(const YAML::Node& list, ConsumerKind kind, std::string_view section) const {
    if (list.IsNull()) return std::make_shared<URLRouter>(std::vector<Route>{});
    if (!list.IsSequence())
      fail(list, fmt::format("`{}` must be a list of routes, each starting with '- path: ...'", section));
    std::vector<Route> routes;
    for (const auto& r : list) routes.push_back(load_route(r, kind, section));
    return std::make_shared<URLRouter>(std::move(routes));
  }

  Route load_route(const YAML::Node& r, ConsumerKind kind, std::string_view section) const {
    check_keys(r, std::string(section) + " route",
               {"path", "re_path", "prefix", "consumer", "include", "options", "name", "allowed_origins"});
    if (r["allowed_origins"] && kind != ConsumerKind::websocket)
      fail(r["allowed_origins"], "`allowed_origins:` applies to `websocket:` routes (browsers send Origin with "
                                 "every WebSocket handshake); remove it from this `http:` route");
    int patterns = (r["path"] ? 1 : 0) + (r["re_path"] ? 1 : 0) + (r["prefix"] ? 1 : 0);
    if (patterns != 1)
      fail(r, "each route needs exactly one of `path:` (Django syntax, like ws/chat/<str:room_name>/), "
              "`re_path:` (a regular expression) or `prefix:` (a path prefix for `include:`)");
    int targets = (r["consumer"] ? 1 : 0) + (r["include"] ? 1 : 0);
    if (targets != 1)
      fail(r, "each route needs exactly one of `consumer:` (a registered consumer name) or `include:` "
              "(a list of routes, or the name of a file holding one)");
    if (r["prefix"] && !r["include"]) fail(r, "`prefix:` goes with `include:`; for a consumer, use `path:`");

    ApplicationPtr app;
    if (r["consumer"]) {
      auto name = scalar<std::string>(r["consumer"], "consumer", "a registered consumer name");
      const auto* entry = registry_.find(name);
      if (!entry) {
        auto names = registry_.names();
        fail(r["consumer"], fmt::format("unknown consumer '{}'{} (registered: {}); register it in main() with "
                                        "consumers.add<YourConsumer>(\"{}\")",
                                        name, suggestion(name, names), fmt::join(names, ", "), name));
      }
      if (entry->kind != kind)
        fail(r["consumer"], fmt::format("consumer '{}' is {} consumer, but this route is under `{}:`; move the "
                                        "route to `{}:`",
                                        name, entry->kind == ConsumerKind::http ? "an HTTP" : "a WebSocket",
                                        section, entry->kind == ConsumerKind::http ? "http" : "websocket"));
      RouteOptions opts;
      opts.base_dir = file_.parent_path();
      if (r["options"]) {
        if (!r["options"].IsMap()) fail(r["options"], "`options:` must be a mapping, like {root: static}");
        opts.options = to_json(r["options"]);
      }
      app = std::make_shared<ConsumerApp>(entry->make, std::move(opts));
    } else {
      if (r["options"]) fail(r["options"], "`options:` belongs on a route with a `consumer:`, not on an `include:`");
      const auto& inc = r["include"];
      if (inc.IsScalar()) {
        if (depth_ > 8) fail(inc, "`include:` nests more than 8 files deep (does a file include itself?)");
        fs::path sub = file_.parent_path() / inc.as<std::string>();
        Loader child(sub, registry_, depth_ + 1);
        child.allow_missing_origin_ = allow_missing_origin_;
        YAML::Node list = child.parse(child.read(inc, *this));
        app = child.load_routes(list, kind, section);
      } else {
        app = load_routes(inc, kind, section);
      }
    }
    if (r["allowed_origins"])
      app = std::make_shared<OriginValidator>(app, origins(r["allowed_origins"], "allowed_origins"),
                                              allow_missing_origin_);
    try {
      if (r["path"]) return path(scalar<std::string>(r["path"], "path", "a path pattern"), app);
      if (r["re_path"]) return re_path(scalar<std::string>(r["re_path"], "re_path", "a regular expression"), app);
      return path(scalar<std::string>(r["prefix"], "prefix", "a path prefix"), app);
    } catch (const ConfigError& e) {
      const auto& node = r["path"] ? r["path"] : r["re_path"] ? r["re_path"] : r["prefix"];
      fail(node, e.what());
    }
  }

  static Json to_json(const YAML::Node& n) {
    switch (n.Type()) {
      case YAML::NodeType::Map: {
        Json o = Json::object();
        for (const auto& kv : n) o[kv.first.as<std::string>()] = to_json(kv.second);
        return o;
      }
      case YAML::NodeType::Sequence: {
        Json a = Json::array();
        for (const auto& v : n) a.push_back(to_json(v));
        return a;
      }
      case YAML::NodeType::Scalar: {
        const std::string& s = n.Scalar();
        if (n.Tag() == "!") return s;  // quoted: always a string
        if (s == "true" || s == "false") return s == "true";
        try {
          std::size_t pos;
          long long i = std::stoll(s, &pos);
          if (pos == s.size()) return i;
          double d = std::stod(s, &pos);
          if (pos == s.size()) return d;
        } catch (const std::exception&) {
        }
        return s;
      }
      default:
        return nullptr;
    }
  }

  std::string read(const YAML::Node& where, const Loader& parent) const {
    std::string error;
    std::string text = read_routing_file(file_, error);
    if (!error.empty()) parent.fail(where, fmt::format("cannot read included file {}: {}", file_.string(), error));
    return text;
  }

  Config load(std::string_view text) const {
    Config c;
    c.file = file_;
    YAML::Node root = parse(text);
    if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    check_keys(root, "routing file", {"server", "channel_layer", "http", "websocket", "tls"});
    if (root["server"]) load_server(root["server"], c.server);
    if (root["tls"]) load_tls(root["tls"], c.server);
    allow_missing_origin_ = c.server.allow_missing_origin;
    if (root["channel_layer"]) load_layer(root["channel_layer"], c.channel_layer);
    ProtocolTypeRouter::Map apps;
    if (root["http"]) apps["http"] = load_routes(root["http"], ConsumerKind::http, "http");
    if (root["websocket"]) apps["websocket"] = load_routes(root["websocket"], ConsumerKind::websocket, "websocket");
    c.application = std::make_shared<ProtocolTypeRouter>(std::move(apps));
    return c;
  }

 private:
  fs::path file_;
  const Registry& registry_;
  int depth_;
  mutable bool allow_missing_origin_ = false;  // server.allow_missing_origin, for per-route checks
};

}  // namespace

Config parse_config(std::string_view yaml, const fs::path& file, const Registry& registry) {
  try {
    return Loader(file, registry).load(yaml);
  } catch (const YAML::Exception& e) {
    // A shape the loader did not foresee: still a ConfigError with the line.
    throw ConfigError(e.mark.is_null() ? fmt::format("{}: {}", file.string(), e.msg)
                                       : fmt::format("{}:{}: {}", file.string(), e.mark.line + 1, e.msg));
  }
}

Config load_config(const fs::path& file, const Registry& registry) {
  std::string error;
  std::string text = read_routing_file(file, error);
  if (!error.empty())
    throw ConfigError(fmt::format("cannot read {}: {} (pass another file with --routing FILE)", file.string(), error));
  return parse_config(text, file, registry);
}

std::shared_ptr<ChannelLayer> make_layer(const LayerConfig& config) {
  if (config.backend == "memory") {
    if (!config.hosts.empty() || !config.symmetric_encryption_keys.empty() || !config.channel_capacity.empty())
      log().warn("channel_layer: hosts, channel_capacity and symmetric_encryption_keys apply to backend: redis; "
                 "the memory backend ignores them");
    return std::make_shared<InMemoryChannelLayer>(config.options);
  }
  if (config.backend == "redis" || config.backend == "redis-pubsub") {
    RedisLayerOptions o;
    o.layer = config.options;
    if (!config.hosts.empty()) o.hosts = config.hosts;
    o.prefix = config.prefix;
    o.channel_capacity = config.channel_capacity;
    o.symmetric_encryption_keys = config.symmetric_encryption_keys;
    if (config.backend == "redis") return std::make_shared<RedisChannelLayer>(std::move(o));
    return std::make_shared<RedisPubSubChannelLayer>(std::move(o));
  }
  throw ConfigError(fmt::format("channel_layer.backend '{}' is not available in this build; use "
                                "backend: memory, redis or redis-pubsub",
                                config.backend));
}

}  // namespace channels
