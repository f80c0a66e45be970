#pragma once
// One logger for the framework (spdlog), named "channels".

#include <memory>

#include <spdlog/spdlog.h>

namespace channels {

spdlog::logger& log();

}  // namespace channels
