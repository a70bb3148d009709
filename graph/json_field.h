#pragma once
#include <optional>
#include <string>

namespace esflow::graph {

// The value at a dotted path ("a.b.c") of a JSON body: strings unquoted,
// numbers and booleans as written. nullopt when the body is not JSON, the
// path is absent, or the value is an object, array or null.
std::optional<std::string> json_field(const std::string& body, const std::string& path);

}  // namespace esflow::graph
