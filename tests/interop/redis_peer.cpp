// A cppchannels process with nothing but a RedisChannelLayer, driven line by
// line for the interop tests: each line on stdin is a JSON command, each
// answer one JSON line on stdout. Bytes travel as {"__bytes__": "<hex>"} in
// this JSON (and as msgpack bin in Redis).
//
//   redis_peer --redis redis://127.0.0.1:PORT [--redis URL2] [--key SECRET]
//   {"op": "new_channel"}                                -> {"channel": "specific.<P>!<L>"}
//   {"op": "send", "channel": C, "message": M}           -> {"error": ""} or {"error": "..."}
//   {"op": "group_add", "group": G, "channel": C}        -> {"error": ""}
//   {"op": "group_send", "group": G, "message": M}       -> {"delivered": n, "dropped": n}
//   {"op": "receive", "channel": C, "timeout": seconds}  -> {"message": M} or {"message": null}
//   {"op": "echo", "channel": C, "timeout": seconds}     -> receives M, sends it to M["reply_to"]

#include <future>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <channels/channels.hpp>

using channels::Json;
using namespace std::chrono_literals;

namespace {

Json to_wire(const Json& j) {
  if (j.is_object() && j.size() == 1 && j.contains("__bytes__")) {
    std::string hex = j["__bytes__"];
    std::vector<std::uint8_t> bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) bytes.push_back(static_cast<std::uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return Json::binary(std::move(bytes));
  }
  if (j.is_object() || j.is_array()) {
    Json out = j;
    for (auto& [k, v] : out.items()) v = to_wire(v);
    return out;
  }
  return j;
}

Json from_wire(const Json& j) {
  if (j.is_binary()) {
    std::string hex;
    for (auto b : j.get_binary()) hex += fmt::format("{:02x}", b);
    return Json{{"__bytes__", hex}};
  }
  if (j.is_object() || j.is_array()) {
    Json out = j;
    for (auto& [k, v] : out.items()) v = from_wire(v);
    return out;
  }
  return j;
}

channels::MessagePtr receive(channels::ChannelLayer& layer, const std::string& channel, double seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(seconds * 1000));
  for (;;) {
    if (auto m = layer.receive_nowait(channel)) return m;
    if (std::chrono::steady_clock::now() > deadline) return nullptr;
    std::this_thread::sleep_for(2ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"A Redis channel layer peer for interop tests"};
  std::vector<std::string> hosts;
  std::vector<std::string> keys;
  cli.add_option("--redis", hosts, "Redis URL (repeat for shards)")->required()->expected(1)->take_all();
  cli.add_option("--key", keys, "symmetric encryption key (repeatable)")->expected(1)->take_all();
  CLI11_PARSE(cli, argc, argv);

  channels::RedisLayerOptions o;
  o.hosts = hosts;
  o.symmetric_encryption_keys = keys;
  auto layer = std::make_shared<channels::RedisChannelLayer>(o);
  for (int i = 0; i < 500 && !layer->connected(); ++i) std::this_thread::sleep_for(10ms);
  std::cout << Json{{"ready", layer->connected()}, {"client_prefix", layer->client_prefix()}}.dump() << std::endl;

  std::string line;
  while (std::getline(std::cin, line)) {
    Json reply;
    try {
      Json cmd = Json::parse(line);
      std::string op = cmd.at("op");
      if (op == "new_channel") {
        reply = {{"channel", layer->new_channel()}};
      } else if (op == "send" || op == "group_add") {
        std::promise<std::error_code> p;
        auto done = [&](std::error_code ec) { p.set_value(ec); };
        if (op == "send") layer->send(cmd.at("channel").get<std::string>(), to_wire(cmd.at("message")), done);
        else layer->group_add(cmd.at("group").get<std::string>(), cmd.at("channel").get<std::string>(), done);
        auto f = p.get_future();
        if (f.wait_for(10s) != std::future_status::ready) reply = {{"error", "no completion within 10 s"}};
        else if (auto ec = f.get()) reply = {{"error", ec.message()}};
        else reply = {{"error", ""}};
      } else if (op == "group_send") {
        std::promise<channels::GroupSendResult> p;
        layer->group_send(cmd.at("group").get<std::string>(), to_wire(cmd.at("message")),
                          [&](channels::GroupSendResult r) { p.set_value(r); });
        auto r = p.get_future().get();
        reply = {{"delivered", r.delivered}, {"dropped", r.dropped}};
      } else if (op == "receive" || op == "echo") {
        auto m = receive(*layer, cmd.at("channel"), cmd.value("timeout", 5.0));
        if (m && op == "echo") {
          layer->send(m->at("reply_to").get<std::string>(), *m);
        }
        reply = {{"message", m ? from_wire(*m) : Json()}};
      } else {
        reply = {{"error", "unknown op " + op}};
      }
    } catch (const std::exception& e) {
      reply = {{"error", e.what()}};
    }
    std::cout << reply.dump() << std::endl;
  }
  return 0;
}
