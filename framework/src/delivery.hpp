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
