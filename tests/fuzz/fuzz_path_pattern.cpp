// libFuzzer: the route matcher. Input: one byte picking path() or re_path(),
// a pattern up to the first newline, then the request path to match.
// Bad patterns must raise ConfigError; matching must never crash or throw.

#include <channels/errors.hpp>
#include <channels/routing.hpp>
#include <channels/scope.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto kind = (data[0] & 1) ? channels::PathPattern::Kind::re_path : channels::PathPattern::Kind::path;
  bool endpoint = data[0] & 2;
  auto nl = in.find('\n');
  std::string_view pattern = in.substr(0, nl);
  std::string_view path = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
  std::optional<channels::PathPattern> p;
  try {
    p.emplace(kind, pattern, endpoint);
  } catch (const channels::ConfigError&) {
    return 0;
  }
  // As the server does: the request target is percent-decoded (always to
  // valid UTF-8) before it is matched.
  if (auto m = p->match(channels::percent_decode(path))) {
    if (m->consumed > channels::percent_decode(path).size()) __builtin_trap();
    (void)m->kwargs.dump();
  }
  return 0;
}
