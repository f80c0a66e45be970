#pragma once
// Every client of one room sends a burst at once, then reads everything the
// room delivers: each client must get every message, in each sender's order.

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <channels/client.hpp>

namespace testing_support {

/// Each client sends `per_client` messages "sender:seq" and then expects
/// clients.size() * per_client messages. Returns one line per client that
/// fell short or saw a sender's messages out of order (empty if none did).
inline std::vector<std::string> burst_in_sender_order(std::vector<channels::WebsocketClient>& clients,
                                                      int per_client, std::chrono::milliseconds timeout) {
  const int n = static_cast<int>(clients.size());
  std::vector<std::string> failures(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto& c = clients[i];
      for (int seq = 0; seq < per_client; ++seq) c.send(std::to_string(i) + ":" + std::to_string(seq));
      std::vector<int> next(n, 0);
      for (int got = 0; got < n * per_client; ++got) {
        auto m = c.receive(timeout);
        if (!m) {
          failures[i] = "client " + std::to_string(i) + " got only " + std::to_string(got) + " messages";
          return;
        }
        auto colon = m->data.find(':');
        int sender = std::stoi(m->data.substr(0, colon)), seq = std::stoi(m->data.substr(colon + 1));
        if (seq != next[sender]) {
          failures[i] = "client " + std::to_string(i) + ": from " + std::to_string(sender) + " expected #" +
                        std::to_string(next[sender]) + ", got #" + std::to_string(seq);
          return;
        }
        ++next[sender];
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<std::string> out;
  for (auto& f : failures)
    if (!f.empty()) out.push_back(std::move(f));
  return out;
}

}  // namespace testing_support
