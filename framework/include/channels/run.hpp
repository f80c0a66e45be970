#pragma once
// The main() of an app: command line, routing.yaml, layer, server.

#include <channels/registry.hpp>

namespace channels {

/// Reads `--routing FILE` (default routing.yaml), `--bind`, `--port`,
/// `--threads`, `--layer memory|redis|redis-pubsub`, `--redis URL`
/// (repeatable), `--log-level`, `-v/--verbosity`, `--access-log FILE|-`,
/// `--root-path`, `--proxy-headers`, `--version` (and CHANNELS_REDIS_URL from
/// the environment), loads the routes with `consumers`, serves
/// until SIGINT/SIGTERM and returns the exit code (2 for a bad configuration).
int run(int argc, char** argv, const Registry& consumers);

}  // namespace channels
