// libFuzzer: the message codecs. The first byte picks one:
//   0: JSON text as JsonWebsocketConsumer reads it, then the handler lookup
//   1: a pub/sub msgpack body (channels_redis' wire), packed again and re-read
//   2: a stored msgpack member (12 random bytes, then msgpack)
// Malformed input must be refused with a reason, never crash.

#include <channels/message.hpp>

#include "json_frame.hpp"
#include "redis/wire.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string error;
  switch (data[0] % 3) {
    case 0: {
      auto frame = channels::detail::parse_json_frame(in, 128);
      if (frame.close_code) return 0;
      const auto& j = frame.content;
      (void)channels::handler_name(channels::message_type(j));
      (void)j.dump(-1, ' ', false, channels::Json::error_handler_t::replace);
      if (j.is_object() && channels::redis::valid_utf8(j)) {
        auto again = channels::redis::read_body(channels::redis::pack(j), error);
        if (!again) __builtin_trap();  // what we pack, we must read
      }
      break;
    }
    case 1: {
      auto d = channels::redis::read_body(in, error);
      if (!d) return 0;
      auto packed = channels::redis::pack(d->message);
      auto again = channels::redis::read_body(packed, error);
      if (!again || again->message != d->message) __builtin_trap();  // a round trip changes nothing
      break;
    }
    case 2: {
      (void)channels::redis::read_member(in, nullptr, 60, error);
      break;
    }
  }
  return 0;
}
