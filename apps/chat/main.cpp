// The chat app: the Django Channels tutorial's chat, served by cppchannels.
// Routes and settings are in routing.yaml.

#include <channels/channels.hpp>

#include "consumers.hpp"

int main(int argc, char** argv) {
  channels::Registry consumers;
  chat::register_consumers(consumers);
  return channels::run(argc, argv, consumers);
}
