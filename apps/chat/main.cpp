// The chat app: the Django Channels tutorial's chat, served by cppchannels,
// with history, presence and limits. Routes and settings are in routing.yaml.

#include <channels/channels.hpp>

#include "consumers.hpp"
#include "hub.hpp"

int main(int argc, char** argv) {
  auto hub = std::make_shared<chat::Hub>();  // history and presence: memory, or Redis with a Redis layer
  channels::Registry consumers;
  chat::register_consumers(consumers, hub);
  return channels::run(argc, argv, consumers,
                       [&](const channels::Config& config, const auto& layer) { hub->start(config, layer); });
}
