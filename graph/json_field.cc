#include "graph/json_field.h"

#include <simdjson.h>

namespace esflow::graph {

std::optional<std::string> json_field(const std::string& body, const std::string& path) {
  thread_local simdjson::ondemand::parser parser;
  simdjson::padded_string padded(body);
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc)) return std::nullopt;
  std::string pointer = "/";
  for (char c : path) pointer += c == '.' ? '/' : c;
  simdjson::ondemand::value v;
  if (doc.at_pointer(pointer).get(v)) return std::nullopt;
  simdjson::ondemand::json_type type;
  if (v.type().get(type)) return std::nullopt;
  switch (type) {
    case simdjson::ondemand::json_type::string: {
      std::string_view s;
      if (v.get_string().get(s)) return std::nullopt;
      return std::string(s);
    }
    case simdjson::ondemand::json_type::number:
    case simdjson::ondemand::json_type::boolean: {
      std::string_view raw = v.raw_json_token();
      while (!raw.empty() &&
             (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\t' || raw.back() == '\r'))
        raw.remove_suffix(1);
      return std::string(raw);
    }
    default:
      return std::nullopt;
  }
}

}  // namespace esflow::graph
