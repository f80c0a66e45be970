#pragma once
// routing.yaml: routes, server settings and the channel layer, checked in
// full before the server starts. Every mistake raises ConfigError naming the
// file, the line and what to write instead.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <channels/layer.hpp>
#include <channels/registry.hpp>
#include <channels/routing.hpp>
#include <channels/server_options.hpp>

namespace channels {

struct LayerConfig {
  std::string backend = "memory";
  LayerOptions options;
  std::vector<std::string> hosts;  // for backends that talk to a server
  std::string prefix = "asgi";
  /// channels_redis' channel_capacity: {glob, capacity}, first match wins.
  std::vector<std::pair<std::string, std::size_t>> channel_capacity;
  /// channels_redis' symmetric_encryption_keys (a list, even for one key).
  std::vector<std::string> symmetric_encryption_keys;
};

struct Config {
  std::filesystem::path file;
  ServerOptions server;
  LayerConfig channel_layer;
  /// ProtocolTypeRouter over the `http:` and `websocket:` route lists.
  ApplicationPtr application;
};

Config load_config(const std::filesystem::path& file, const Registry& registry);
/// The same from text; `file` is used in messages and to resolve relative paths.
Config parse_config(std::string_view yaml, const std::filesystem::path& file, const Registry& registry);

/// The layer a LayerConfig asks for: memory, or redis (channels_redis'
/// RedisChannelLayer; hosts default to redis://localhost:6379). Throws
/// ConfigError for a backend this build does not have or a bad setting.
std::shared_ptr<ChannelLayer> make_layer(const LayerConfig& config);

}  // namespace channels
