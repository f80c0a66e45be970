#include <channels/run.hpp>

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
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  log().set_level(spdlog::level::from_str(log_level));

  try {
    Config config = load_config(routing, consumers);
    if (bind) config.server.bind = *bind;
    if (port) config.server.port = static_cast<std::uint16_t>(*port);
    if (threads) config.server.threads = static_cast<unsigned>(*threads);
    if (layer) config.channel_layer.backend = *layer;
    if (cert) config.server.tls_cert = *cert;
    if (key) config.server.tls_key = *key;
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
