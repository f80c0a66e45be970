// A program with Asio work of its own (a timer printing the server's counters
// every second) that embeds a cppchannels server on its io_context, routed in
// code. Ctrl-C stops both. `embed_app --self-test` serves on a free port,
// answers itself once, prints one report and exits: how the build checks it.
#include <channels/channels.hpp>

#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstring>
#include <iostream>
#include <thread>

struct Echo : channels::AsyncWebsocketConsumer {
  channels::awaitable<void> receive(std::string text) override { co_await send("echo: " + text); }
};

int main(int argc, char** argv) {
  namespace net = boost::asio;
  using namespace channels;
  bool self_test = argc > 1 && !std::strcmp(argv[1], "--self-test");
  net::io_context ioc;  // the program's own; the server starts no thread
  auto app = std::make_shared<ProtocolTypeRouter>(ProtocolTypeRouter::Map{
      {"websocket", std::make_shared<URLRouter>(std::vector<Route>{path("ws/echo/", as_app<Echo>())})}});
  ServerOptions options;
  options.port = self_test ? 0 : 8000;
  Server server(ioc, options, app, std::make_shared<InMemoryChannelLayer>());
  server.start();

  net::steady_timer timer(ioc);
  int reports = 0;
  std::function<void()> report = [&] {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([&](boost::system::error_code ec) {
      if (ec) return;
      auto s = server.stats();
      std::cout << "accepted " << s.connections_accepted << ", open websockets " << s.websockets_open << std::endl;
      ++reports;
      report();
    });
  };
  report();

  // The server closes its connections (1001); then the program's own work ends.
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  auto stop = [&] { server.async_shutdown([&] { timer.cancel(), signals.cancel(); }); };
  signals.async_wait([&](boost::system::error_code ec, int) { if (!ec) stop(); });

  bool ok = !self_test;
  std::thread client;  // a blocking client: not on the io_context's thread
  if (self_test) client = std::thread([&] {
    WebsocketClient ws;
    ws.connect("ws://127.0.0.1:" + std::to_string(server.port()) + "/ws/echo/");
    ws.send("hi");
    auto reply = ws.receive();
    ok = reply && reply->data == "echo: hi";
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // one report with the client in it
    net::post(ioc, stop);
  });
  ioc.run();
  if (client.joinable()) client.join();
  return ok && (!self_test || reports > 0) ? 0 : 1;
}
