// One error type for the host: a message for the user and the exit code (2 = bad input, 1 = failure).
#pragma once

#include <stdexcept>
#include <string>

struct HostError : std::runtime_error {
  int exit_code;
  HostError(const std::string& message, int code) : std::runtime_error(message), exit_code(code) {}
};
