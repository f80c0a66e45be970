#pragma once
// A channel-layer message: a JSON-like map whose "type" names the handler
// that runs it ("chat.message" runs the handler registered as chat_message).

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace channels {

using Json = nlohmann::json;

/// A message travelling over a channel layer. Plain JSON (with a binary type
/// for bytes), so the Redis layer can put it on the wire as msgpack unchanged.
using Message = nlohmann::json;

/// Messages are immutable once sent: a group fan-out shares one copy between
/// every member instead of copying it per member.
using MessagePtr = std::shared_ptr<const Message>;

/// Channels' convention: "chat.message" is handled by "chat_message".
/// Returns an empty string for types that may not name a handler (empty, or
/// starting with '_', which Channels reserves for private methods).
std::string handler_name(std::string_view type);

/// The "type" of a message, or an empty string if it has none.
std::string_view message_type(const Message& m);

}  // namespace channels
