#include "storage/index_value.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace esflow::storage::index_value {

std::string of_absent() { return std::string(1, static_cast<char>(absent)); }

std::string of_bool(bool v) { return std::string{static_cast<char>(boolean), static_cast<char>(v ? 1 : 0)}; }

std::string of_number(double v) {
  if (v == 0) v = 0;  // -0 and 0 are equal: one encoding
  auto bits = std::bit_cast<std::uint64_t>(v);
  // Flip so that unsigned byte order is numeric order: negatives reversed.
  bits = (bits & (std::uint64_t{1} << 63)) != 0 ? ~bits : bits | (std::uint64_t{1} << 63);
  std::string out(9, '\0');
  out[0] = static_cast<char>(number);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(1 + i)] = static_cast<char>(bits >> (56 - 8 * i));
  return out;
}

std::string of_string(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 3);
  out.push_back(static_cast<char>(string));
  for (char c : v) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xFF');
  }
  out.push_back('\0');
  out.push_back('\0');
  return out;
}

std::string type_begin(tag t) { return std::string(1, static_cast<char>(t)); }
std::string type_end(tag t) { return std::string(1, static_cast<char>(t + 1)); }

std::optional<std::size_t> length_of(std::string_view bytes) noexcept {
  if (bytes.empty()) return std::nullopt;
  switch (static_cast<unsigned char>(bytes[0])) {
    case absent:
      return 1;
    case boolean:
      return bytes.size() >= 2 ? std::optional<std::size_t>(2) : std::nullopt;
    case number:
      return bytes.size() >= 9 ? std::optional<std::size_t>(9) : std::nullopt;
    case string:
      for (std::size_t i = 1; i + 1 < bytes.size(); ++i) {
        if (bytes[i] != '\0') continue;
        if (bytes[i + 1] == '\0') return i + 2;
        if (bytes[i + 1] != '\xFF') return std::nullopt;
        ++i;  // an escaped zero byte
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace esflow::storage::index_value
