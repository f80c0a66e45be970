#pragma once

namespace channels {

/// What became of a send(): uWebSockets taught us that back-pressure belongs
/// in the API instead of hidden in an ever-growing queue.
enum class SendStatus {
  queued,   // accepted; it goes out in order
  dropped,  // the connection's send queue was full (policy: drop)
  closed,   // the connection is closing or closed: nothing was sent
};

}  // namespace channels
