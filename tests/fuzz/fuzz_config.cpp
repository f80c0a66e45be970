// libFuzzer: the routing.yaml loader. Any text must load or raise
// ConfigError naming the problem; nothing else may escape.

#include <channels/channels.hpp>
#include <channels/errors.hpp>

namespace {
struct Ws : channels::WebsocketConsumer {};
struct Http : channels::HttpConsumer {
  void on_request(const channels::HttpRequest&) override {}
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static channels::Registry registry = [] {
    channels::Registry r;
    r.add<Ws>("app.Ws");
    r.add<Http>("app.Http");
    return r;
  }();
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    // A relative name: include: lines resolve against a folder that does not exist.
    auto config = channels::parse_config(text, "fuzz-nowhere/routing.yaml", registry);
    (void)config;
  } catch (const channels::ConfigError&) {
  }
  return 0;
}
