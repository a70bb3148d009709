#pragma once
// Reading the runner's JSON messages and records through simdjson's DOM:
// the two ways a string field is taken.
#include <simdjson.h>

#include <string>
#include <string_view>

namespace esflow::runner {

// The string at `key`, "" when it is absent or not a string.
template <class Json>
std::string text_field(Json&& parent, std::string_view key) {
  std::string_view s;
  return parent[key].get_string().get(s) ? std::string() : std::string(s);
}

// Copies the string at `key` into `out`; false when the key holds something else (absent: true,
// `out` unchanged).
inline bool read_text(simdjson::dom::object parent, std::string_view key, std::string& out) {
  simdjson::dom::element e;
  if (parent[key].get(e)) return true;
  std::string_view s;
  if (e.get_string().get(s)) return false;
  out.assign(s);
  return true;
}

}  // namespace esflow::runner
