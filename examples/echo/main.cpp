// A whole cppchannels app: an echo consumer routed in code, served on
// --port (default 8000). `echo_app --port 0 --self-test` answers itself once
// and exits, which is how the build test checks the installed package works.
#include <channels/channels.hpp>

#include <cstring>
#include <iostream>

struct Echo : channels::AsyncWebsocketConsumer {
  channels::awaitable<void> receive(std::string text) override { co_await send("echo: " + text); }
};

int main(int argc, char** argv) {
  using namespace channels;
  auto app = std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("ws/echo/", as_app<Echo>())})}});
  ServerOptions options;
  options.port = argc > 2 && !std::strcmp(argv[1], "--port") ? static_cast<std::uint16_t>(std::atoi(argv[2])) : 8000;
  Server server(options, app, std::make_shared<InMemoryChannelLayer>());
  if (argc < 4 || std::strcmp(argv[3], "--self-test")) return server.run();
  server.start();
  WebsocketClient client;
  client.connect("ws://127.0.0.1:" + std::to_string(server.port()) + "/ws/echo/");
  client.send("hi");
  auto reply = client.receive();
  std::cout << (reply ? reply->data : "no reply") << "\n";
  server.shutdown();
  return reply && reply->data == "echo: hi" ? 0 : 1;
}
