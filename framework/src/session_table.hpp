#pragma once
// Private to the server: the live connections, for the idle sweep, the
// shutdown and the connection limits.
//
// Why not a hash map keyed by the session's address: every connection is
// added, handed over (HTTP to WebSocket) and removed once, and with ten
// thousand of them the map's nodes and buckets are cold; its lookups were
// about 7% of the server's CPU while connections poured in. Here a session
// knows its slot, so each of those steps touches one slot of a vector.

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace channels::detail {

class Session;

/// Where a session is in the SessionTable; kept in the session, read and
/// written only under the table owner's lock.
struct SessionSlot {
  static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();
  std::uint32_t index = none;
};

/// Not thread-safe: the server holds its mutex around every call.
class SessionTable {
 public:
  /// Registers `slot`'s session, from the address `client` (empty: not
  /// counted per address). Returns how many live connections that address
  /// has now, this one included (0 for an empty `client`, or when the
  /// session was already in the table).
  std::size_t add(SessionSlot& slot, std::weak_ptr<Session> session, const std::string& client) {
    if (slot.index != SessionSlot::none) return 0;
    slot.index = take_slot();
    auto& e = entries_[slot.index];
    e.session = std::move(session);
    e.client = client;
    ++size_;
    return client.empty() ? 0 : ++per_client_[client];
  }

  void remove(SessionSlot& slot) {
    if (slot.index == SessionSlot::none) return;
    auto& e = entries_[slot.index];
    if (!e.client.empty()) {
      auto c = per_client_.find(e.client);
      if (c != per_client_.end() && --c->second == 0) per_client_.erase(c);
    }
    e = Entry{};
    free_.push_back(slot.index);
    slot.index = SessionSlot::none;
    --size_;
  }

  /// `to` takes `from`'s slot and its count per address, in one step. If
  /// `from` is not in the table, `to` is added without an address.
  void hand_over(SessionSlot& from, SessionSlot& to, std::weak_ptr<Session> session) {
    if (from.index == SessionSlot::none) {
      add(to, std::move(session), {});
      return;
    }
    remove(to);  // a session is in the table once
    to.index = std::exchange(from.index, SessionSlot::none);
    entries_[to.index].session = std::move(session);
  }

  std::size_t size() const noexcept { return size_; }

  /// Appends the sessions still alive.
  void collect(std::vector<std::shared_ptr<Session>>& out) const {
    out.reserve(out.size() + size_);
    for (const auto& e : entries_)
      if (auto s = e.session.lock()) out.push_back(std::move(s));
  }

 private:
  struct Entry {
    std::weak_ptr<Session> session;
    std::string client;  // empty: not counted per address
  };

  std::uint32_t take_slot() {
    if (!free_.empty()) {
      auto i = free_.back();
      free_.pop_back();
      return i;
    }
    entries_.emplace_back();
    return static_cast<std::uint32_t>(entries_.size() - 1);
  }

  std::vector<Entry> entries_;       // grows to the most connections ever open at once
  std::vector<std::uint32_t> free_;  // entries_ not in use, reused last-freed first
  std::size_t size_ = 0;
  std::unordered_map<std::string, std::size_t> per_client_;  // live connections by address
};

}  // namespace channels::detail
