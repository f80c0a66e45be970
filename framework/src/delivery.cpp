#include "delivery.hpp"

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

namespace channels::detail {

constinit thread_local const MessagePtr* Delivery::current_ = nullptr;

namespace {

// Frames built on this thread, by the message they were built for. Members
// are drained one after another, each through its whole batch: after a burst
// of 200 messages the second member asks for the first message's frame once
// the first member has built all 200. So a table rather than a slot for the
// last frame: two ways per set by the message's address (a collision costs a
// dump, nothing else), and bounded in bytes, because a frame stays in its
// slot after its message is gone until another message takes the slot.
class FrameTable {
 public:
  struct Slot {
    const Message* key = nullptr;
    std::weak_ptr<const Message> message;  // tells a freed message from a new one at its address
    bool json = false;
    Json content;  // JSON sends: the value the frame was dumped from
    std::shared_ptr<const std::string> payload;
    std::uint64_t stamp = 0;  // when it was stored: the older way of a set goes first
  };

  static constexpr std::size_t sets = 1024;  // a power of two
  static constexpr std::size_t byte_budget = std::size_t{1} << 20;

  // The slot holding a frame built for `m`, or null.
  Slot* find(const MessagePtr& m) {
    if (table_.empty()) return nullptr;
    Slot* set = &table_[2 * index(m.get())];
    for (Slot* s = set; s != set + 2; ++s)
      if (s->key == m.get() && !s->message.expired()) return s;
    return nullptr;
  }

  void store(const MessagePtr& m, bool json, Json content, const std::shared_ptr<const std::string>& payload) {
    if (payload->size() > byte_budget) return;
    if (table_.empty()) table_.resize(2 * sets);
    Slot* set = &table_[2 * index(m.get())];
    Slot& s = set[0].key == m.get() ? set[0]
              : set[1].key == m.get() ? set[1]
              : set[0].stamp <= set[1].stamp ? set[0] : set[1];
    if (s.payload) bytes_ -= s.payload->size();
    s = {};
    if (bytes_ + payload->size() > byte_budget) clear();
    s = {m.get(), m, json, std::move(content), payload, ++stamp_};
    bytes_ += payload->size();
  }

  std::size_t bytes() const { return bytes_; }

 private:
  static std::size_t index(const Message* m) {
    // Fibonacci hashing: allocations sit at regular strides, which a plain
    // modulo would pile into a few sets.
    auto x = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(m)) * 0x9E3779B97F4A7C15ull;
    return static_cast<std::size_t>(x >> (64 - std::countr_zero(sets)));
  }

  void clear() {
    for (auto& s : table_) s = {};
    bytes_ = 0;
  }

  std::vector<Slot> table_;
  std::size_t bytes_ = 0;
  std::uint64_t stamp_ = 0;
};
thread_local FrameTable frames;

// Whether `a` and `b` dump to the same text.
bool same_dump(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::object:
    case Json::value_t::array: {
      if (a.size() != b.size()) return false;
      for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
        if (a.is_object() && i.key() != j.key()) return false;
        if (!same_dump(*i, *j)) return false;
      }
      return true;
    }
    case Json::value_t::number_float: {
      double x = a.get<double>(), y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    default:
      return a == b;  // null, booleans, strings, integers of one signedness, binary: exact
  }
}

}  // namespace

std::shared_ptr<const std::string> Delivery::shared_payload(std::string_view text) {
  if (!current_ || !*current_) return std::make_shared<const std::string>(text);
  const MessagePtr& message = *current_;
  if (message->is_object()) {
    for (auto it = message->begin(); it != message->end(); ++it) {
      if (!it->is_string()) continue;
      const auto& field = it->get_ref<const std::string&>();
      // Aliasing: the payload keeps the message alive, nothing is copied.
      if (field.data() == text.data() && field.size() == text.size())
        return std::shared_ptr<const std::string>(message, &field);
    }
  }
  auto* slot = frames.find(message);
  if (slot && !slot->json && *slot->payload == text) return slot->payload;
  auto payload = std::make_shared<const std::string>(text);
  frames.store(message, false, nullptr, payload);
  return payload;
}

std::shared_ptr<const std::string> Delivery::shared_json(const Json& content) {
  if (!current_ || !*current_) return std::make_shared<const std::string>(content.dump());
  const MessagePtr& message = *current_;
  auto* slot = frames.find(message);
  if (slot && slot->json && same_dump(slot->content, content)) return slot->payload;
  auto payload = std::make_shared<const std::string>(content.dump());
  // The first member's value stays: members that personalise theirs dump
  // their own, and the rest keep sharing.
  if (!slot || !slot->json) frames.store(message, true, content, payload);
  return payload;
}

std::size_t Delivery::cached_bytes() { return frames.bytes(); }
std::size_t Delivery::cache_budget() { return FrameTable::byte_budget; }

}  // namespace channels::detail
