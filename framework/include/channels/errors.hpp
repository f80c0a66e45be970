#pragma once
// Exceptions raised while setting up (bad configuration, bad names). Once the
// server runs, I/O errors travel as error codes and never as exceptions.

#include <stdexcept>
#include <string>

namespace channels {

/// A configuration mistake found while starting: routing.yaml, a route
/// pattern, a consumer name. The message says where and what to write instead.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A channel or group name that Channels would reject.
class InvalidName : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace channels
