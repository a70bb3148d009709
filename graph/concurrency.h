#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::graph {

// How many messages one stage processes at once: `serial`, a number, or `unlimited`.
struct concurrency {
  enum class mode { serial, bounded, unlimited };
  mode kind = mode::serial;
  std::size_t limit = 1;  // bounded: N; serial: 1; unlimited: 0

  static concurrency serial() { return {mode::serial, 1}; }
  static concurrency bounded(std::size_t n) {
    return {n <= 1 ? mode::serial : mode::bounded, n <= 1 ? 1 : n};
  }
  static concurrency unlimited() { return {mode::unlimited, 0}; }
  static std::optional<concurrency> parse(std::string_view text);
  std::string to_string() const;
};

}  // namespace esflow::graph
