#include <channels/channels.hpp>

#include "chat.hpp"
#include "echo.hpp"

int main(int argc, char** argv) {
  channels::Registry consumers;
  consumers.add<EchoConsumer>("mysite.Echo");
  consumers.add<ChatConsumer>("mysite.Chat");
  return channels::run(argc, argv, consumers);
}
