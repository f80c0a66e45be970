#include <channels/log.hpp>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace channels {

spdlog::logger& log() {
  // Stderr, so that an app's stdout stays its own.
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_color_mt("channels");
    l->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
    return l;
  }();
  return *logger;
}

}  // namespace channels
