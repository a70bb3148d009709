#pragma once
// Typed parameters of stages and pipeline settings: one schema per stage kind
// (name, type, default, bounds, doc) and the validated values of one instance.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace esflow::graph {

enum class param_type { string, integer, boolean, size, duration, choice, string_list, string_map };
std::string_view to_string(param_type t) noexcept;

// Sizes are bytes ("1MiB" -> 1048576), durations milliseconds ("2s" -> 2000).
using param_value = std::variant<std::string, std::int64_t, bool, std::vector<std::string>,
                                 std::map<std::string, std::string>>;

struct param_spec {
  std::string name;
  param_type type = param_type::string;
  std::optional<param_value> default_value;  // none: required
  std::string doc;
  std::vector<std::string> choices;  // for param_type::choice
  std::int64_t min = INT64_MIN;      // for integer, size, duration
  std::int64_t max = INT64_MAX;

  bool required() const noexcept { return !default_value.has_value(); }
};

// Builders that read well in a descriptor table.
param_spec string_param(std::string name, std::optional<std::string> def, std::string doc);
param_spec int_param(std::string name, std::optional<std::int64_t> def, std::string doc,
                     std::int64_t min = INT64_MIN, std::int64_t max = INT64_MAX);
param_spec bool_param(std::string name, bool def, std::string doc);
param_spec size_param(std::string name, std::optional<std::int64_t> def, std::string doc);
param_spec duration_param(std::string name, std::optional<std::int64_t> def_ms, std::string doc);
param_spec choice_param(std::string name, std::string def, std::vector<std::string> choices, std::string doc);
param_spec list_param(std::string name, std::optional<std::vector<std::string>> def, std::string doc);
param_spec map_param(std::string name, std::optional<std::map<std::string, std::string>> def,
                     std::string doc);

// Validated values of one stage instance (or of the settings block). Every
// name a stage reads is in its schema, so lookups cannot miss.
class param_values {
 public:
  void set(std::string name, param_value v) { _values[std::move(name)] = std::move(v); }
  bool has(const std::string& name) const { return _values.count(name) != 0; }

  const std::string& str(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;  // also sizes and durations
  bool boolean(const std::string& name) const;
  const std::vector<std::string>& list(const std::string& name) const;
  const std::map<std::string, std::string>& map(const std::string& name) const;

  const std::map<std::string, param_value>& all() const { return _values; }

 private:
  std::map<std::string, param_value> _values;
};

// Parsing of human-written scalars; nullopt when malformed.
std::optional<std::int64_t> parse_size(std::string_view text);         // "64", "1MiB", "512KiB", "2GB"
std::optional<std::int64_t> parse_duration_ms(std::string_view text);  // "250ms", "2s", "1m", "500"
std::optional<std::int64_t> parse_integer(std::string_view text);

// Renders a value for dumps and error messages.
std::string render(const param_value& v);

}  // namespace esflow::graph
