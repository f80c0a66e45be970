#pragma once
// The main() of an app: command line, routing.yaml, layer, server.

#include <functional>
#include <memory>

#include <channels/config.hpp>
#include <channels/registry.hpp>

namespace channels {

/// Reads `--routing FILE` (default routing.yaml), `--bind`, `--port`,
/// `--threads`, `--layer memory|redis|redis-pubsub`, `--redis URL`
/// (repeatable), `--cert FILE --key FILE` (TLS), `--log-level`, `-v/--verbosity`,
/// `--access-log FILE|-`, `--root-path`, `--proxy-headers`, `--version` (and
/// CHANNELS_REDIS_URL from the environment), loads the routes with `consumers`, serves
/// until SIGINT/SIGTERM and returns the exit code (2 for a bad configuration).
int run(int argc, char** argv, const Registry& consumers);

/// Called once the configuration (command line included) is read and the
/// layer is made, before the server listens: the place for app services that
/// must follow the same settings, like a store on the layer's Redis. It may
/// throw ConfigError to stop start-up with a message.
using StartHook = std::function<void(const Config& config, const std::shared_ptr<ChannelLayer>& layer)>;
int run(int argc, char** argv, const Registry& consumers, const StartHook& on_start);

}  // namespace channels
