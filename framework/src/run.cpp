#include <channels/run.hpp>

#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <channels/config.hpp>
#include <channels/errors.hpp>
#include <channels/log.hpp>
#include <channels/server.hpp>

namespace channels {

int run(int argc, char** argv, const Registry& consumers) { return run(argc, argv, consumers, {}); }

int run(int argc, char** argv, const Registry& consumers, const StartHook& on_start) {
  CLI::App cli{"A cppchannels server: routes, consumers and settings come from routing.yaml."};
  std::string routing = "routing.yaml";
  std::optional<std::string> bind;
  std::optional<int> port;
  std::optional<int> threads;
  std::string log_level = "info";
  std::optional<std::string> layer;
  std::vector<std::string> redis_hosts;
  std::optional<std::string> cert, key;
  cli.add_option("--routing", routing, "Routes and settings file")->capture_default_str();
  cli.add_option("--bind", bind, "Address to listen on (overrides server.bind)");
  cli.add_option("--port", port, "Port to listen on (overrides server.port)")->check(CLI::Range(0, 65535));
  cli.add_option("--threads", threads, "Server threads, 0 for one per core (overrides server.threads)")
      ->check(CLI::Range(0, 1024));
  cli.add_option("--layer", layer, "Channel layer: memory, redis or redis-pubsub (overrides channel_layer.backend)")
      ->check(CLI::IsMember({"memory", "redis", "redis-pubsub"}));
  cli.add_option("--redis", redis_hosts,
                 "Redis server URL, like redis://127.0.0.1:6379; repeat it for several shards (overrides "
                 "channel_layer.hosts)")
      ->expected(1)
      ->take_all();
  cli.add_option("--cert", cert, "TLS certificate chain, PEM: serve https:// and wss:// (overrides tls.cert)")
      ->check(CLI::ExistingFile);
  cli.add_option("--key", key, "TLS private key, PEM (overrides tls.key)")->check(CLI::ExistingFile);
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  // daphne's flags, on top of routing.yaml's `server:` settings.
  std::optional<int> verbosity;
  std::optional<std::string> access_log;
  std::optional<std::string> root_path;
  bool proxy_headers = false;
  bool reuse_port = false;
  cli.add_option("-v,--verbosity", verbosity, "How much to log: 0 errors, 1 info (default), 2 debug, 3 trace")
      ->check(CLI::Range(0, 3));
  cli.add_option("--access-log", access_log,
                 "Where access lines go: a file to append to, or - for stdout (overrides server.access_log; "
                 "default: the log on stderr)");
  cli.add_option("--root-path", root_path, "Path prefix the app is mounted under behind a proxy (scope root_path)");
  cli.add_flag("--proxy-headers", proxy_headers,
               "Trust X-Forwarded-For and X-Forwarded-Proto for the client address and scheme "
               "(only behind a proxy that sets them)");
  cli.add_flag("--reuse-port", reuse_port,
               "Share the port with other processes started with --reuse-port (SO_REUSEPORT): the kernel "
               "spreads connections over them; use the Redis layer so that they share groups");
  cli.set_version_flag("--version", std::string("cppchannels ") + CHANNELS_VERSION);
  cli.footer(
      "Environment: CHANNELS_REDIS_URL sets the Redis server (a URL may carry a password, which is why it is "
      "not in routing.yaml); --redis wins over it.");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  log().set_level(spdlog::level::from_str(log_level));
  if (verbosity) {
    static constexpr spdlog::level::level_enum levels[] = {spdlog::level::err, spdlog::level::info,
                                                          spdlog::level::debug, spdlog::level::trace};
    log().set_level(levels[*verbosity]);
  }

  try {
    Config config = load_config(routing, consumers);
    if (bind) config.server.bind = *bind;
    if (port) config.server.port = static_cast<std::uint16_t>(*port);
    if (threads) config.server.threads = static_cast<unsigned>(*threads);
    if (layer) config.channel_layer.backend = *layer;
    if (cert) config.server.tls_cert = *cert;
    if (key) config.server.tls_key = *key;
    if (access_log) config.server.access_log = *access_log;
    if (root_path) config.server.root_path = *root_path;
    if (proxy_headers) config.server.proxy_headers = true;
    if (reuse_port) config.server.reuse_port = true;
    if (const char* url = std::getenv("CHANNELS_REDIS_URL"); url && *url && redis_hosts.empty())
      config.channel_layer.hosts = {url};
    if (!redis_hosts.empty()) {
      if (config.channel_layer.backend == "memory")
        throw ConfigError("--redis names a Redis server, but the channel layer is memory: add --layer redis "
                          "(or set channel_layer.backend: redis in " + routing + ")");
      config.channel_layer.hosts = redis_hosts;
    }
    if (config.channel_layer.backend != "memory")
      log().info("channel layer: {} on {} (prefix '{}')", config.channel_layer.backend,
                 config.channel_layer.hosts.empty() ? std::string("redis://localhost:6379")
                                                    : fmt::format("{}", fmt::join(config.channel_layer.hosts, ", ")),
                 config.channel_layer.prefix);
    auto layer = make_layer(config.channel_layer);
    if (on_start) on_start(config, layer);
    Server server(config.server, config.application, layer);
    return server.run();
  } catch (const ConfigError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::system_error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace channels
