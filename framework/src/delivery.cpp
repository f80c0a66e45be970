#include "delivery.hpp"

namespace channels::detail {

constinit thread_local const MessagePtr* Delivery::current_ = nullptr;

namespace {

// The last frame built while handling a message on this thread. Members of a
// group are drained one after another, so the next member usually finds it.
struct LastFrame {
  MessagePtr message;
  std::shared_ptr<const std::string> payload;
};
thread_local LastFrame last_frame;

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
  if (last_frame.message == message && *last_frame.payload == text) return last_frame.payload;
  auto payload = std::make_shared<const std::string>(text);
  last_frame = {message, payload};
  return payload;
}

}  // namespace channels::detail
