#pragma once
// Private to the framework: the layer message a consumer's handler is
// running for on this thread, so that what the handler sends can share
// memory with the message and with the other members it is delivered to.
//
// A group message reaches every local member as one shared copy. When each
// member's handler sends the same text (`send(event["text"])`, or the same
// JSON), the members' frames should be that one copy too, not one
// allocation per member: server frames are unmasked, so the bytes on the
// wire are identical.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <channels/message.hpp>

namespace channels::detail {

class Delivery {
 public:
  /// Marks `message` as the one being handled on this thread until destroyed.
  explicit Delivery(const MessagePtr& message) : previous_(current_) { current_ = &message; }
  ~Delivery() { current_ = previous_; }
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  /// The payload to send for `text`, shared where possible: the message's
  /// own string when `text` is one of its fields, or the frame another
  /// member built for the same message on this thread; a new copy otherwise.
  static std::shared_ptr<const std::string> shared_payload(std::string_view text);

  /// The payload for `content` as JSON text, shared the same way: the frame
  /// another member dumped from the same value for the same message on this
  /// thread (the dump, the larger part of a JSON send, is then skipped), or
  /// a new dump. "The same" is what dumps the same: equal types and bits
  /// (1 and 1.0, 0.0 and -0.0 differ), not JSON's ==.
  static std::shared_ptr<const std::string> shared_json(const Json& content);

  /// Bytes of frames this thread keeps for the members still to come (they
  /// can outlive their messages, up to `cache_budget()`).
  static std::size_t cached_bytes();
  static std::size_t cache_budget();

 private:
  // constinit: other translation units then read the variable directly.
  // Without it GCC calls a TLS init function if one is linked in and checks
  // the variable's address for null (-fsanitize=null) with flags that the
  // linker's TLS relaxation (add -> lea) leaves stale: UBSan reported a
  // store to a null pointer here.
  static constinit thread_local const MessagePtr* current_;
  const MessagePtr* previous_;
};

}  // namespace channels::detail
