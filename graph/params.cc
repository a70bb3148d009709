#include "graph/params.h"

#include <charconv>
#include <stdexcept>

namespace esflow::graph {

std::string_view to_string(param_type t) noexcept {
  switch (t) {
    case param_type::string:
      return "string";
    case param_type::integer:
      return "integer";
    case param_type::boolean:
      return "boolean";
    case param_type::size:
      return "size";
    case param_type::duration:
      return "duration";
    case param_type::choice:
      return "choice";
    case param_type::string_list:
      return "list";
    case param_type::string_map:
      return "map";
  }
  return "?";
}

param_spec string_param(std::string name, std::optional<std::string> def, std::string doc) {
  param_spec p{std::move(name), param_type::string, {}, std::move(doc), {}};
  if (def) p.default_value = *def;
  return p;
}
param_spec int_param(std::string name, std::optional<std::int64_t> def, std::string doc, std::int64_t min,
                     std::int64_t max) {
  param_spec p{std::move(name), param_type::integer, {}, std::move(doc), {}};
  if (def) p.default_value = *def;
  p.min = min;
  p.max = max;
  return p;
}
param_spec bool_param(std::string name, bool def, std::string doc) {
  return param_spec{std::move(name), param_type::boolean, param_value{def}, std::move(doc), {}};
}
param_spec size_param(std::string name, std::optional<std::int64_t> def, std::string doc) {
  param_spec p{std::move(name), param_type::size, {}, std::move(doc), {}};
  if (def) p.default_value = *def;
  p.min = 0;
  return p;
}
param_spec duration_param(std::string name, std::optional<std::int64_t> def_ms, std::string doc) {
  param_spec p{std::move(name), param_type::duration, {}, std::move(doc), {}};
  if (def_ms) p.default_value = *def_ms;
  p.min = 0;
  return p;
}
param_spec choice_param(std::string name, std::string def, std::vector<std::string> choices,
                        std::string doc) {
  param_spec p{std::move(name), param_type::choice, param_value{std::move(def)}, std::move(doc), {}};
  p.choices = std::move(choices);
  return p;
}
param_spec list_param(std::string name, std::optional<std::vector<std::string>> def, std::string doc) {
  param_spec p{std::move(name), param_type::string_list, {}, std::move(doc), {}};
  if (def) p.default_value = *def;
  return p;
}
param_spec map_param(std::string name, std::optional<std::map<std::string, std::string>> def,
                     std::string doc) {
  param_spec p{std::move(name), param_type::string_map, {}, std::move(doc), {}};
  if (def) p.default_value = *def;
  return p;
}

namespace {
template <typename T>
const T& get_as(const std::map<std::string, param_value>& values, const std::string& name) {
  auto it = values.find(name);
  if (it == values.end()) throw std::logic_error("stage reads undeclared parameter '" + name + "'");
  const T* v = std::get_if<T>(&it->second);
  if (!v) throw std::logic_error("stage reads parameter '" + name + "' as the wrong type");
  return *v;
}
}  // namespace

// A miss here is a bug in a stage (it read a name its schema does not declare),
// not bad input: the loader has already checked every value.
const std::string& param_values::str(const std::string& name) const {
  return get_as<std::string>(_values, name);
}
std::int64_t param_values::integer(const std::string& name) const {
  return get_as<std::int64_t>(_values, name);
}
bool param_values::boolean(const std::string& name) const { return get_as<bool>(_values, name); }
const std::vector<std::string>& param_values::list(const std::string& name) const {
  return get_as<std::vector<std::string>>(_values, name);
}
const std::map<std::string, std::string>& param_values::map(const std::string& name) const {
  return get_as<std::map<std::string, std::string>>(_values, name);
}

std::optional<std::int64_t> parse_integer(std::string_view text) {
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

namespace {
std::optional<std::int64_t> parse_scaled(
    std::string_view text, std::initializer_list<std::pair<std::string_view, std::int64_t>> units) {
  std::size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return std::nullopt;
  auto number = parse_integer(text.substr(0, i));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  for (const auto& [name, scale] : units) {
    if (unit == name) {
      if (*number > INT64_MAX / scale) return std::nullopt;
      return *number * scale;
    }
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::int64_t> parse_size(std::string_view text) {
  return parse_scaled(text, {{"", 1},
                             {"B", 1},
                             {"KiB", 1024},
                             {"MiB", 1024 * 1024},
                             {"GiB", 1024LL * 1024 * 1024},
                             {"KB", 1000},
                             {"MB", 1000 * 1000},
                             {"GB", 1000LL * 1000 * 1000}});
}

std::optional<std::int64_t> parse_duration_ms(std::string_view text) {
  return parse_scaled(text, {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}});
}

std::string render(const param_value& v) {
  struct visitor {
    std::string operator()(const std::string& s) const { return s; }
    std::string operator()(std::int64_t i) const { return std::to_string(i); }
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(const std::vector<std::string>& l) const {
      std::string out = "[";
      for (std::size_t i = 0; i < l.size(); ++i) out += (i ? ", " : "") + l[i];
      return out + "]";
    }
    std::string operator()(const std::map<std::string, std::string>& m) const {
      std::string out = "{";
      bool first = true;
      for (const auto& [k, val] : m) {
        out += (first ? "" : ", ") + k + ": " + val;
        first = false;
      }
      return out + "}";
    }
  };
  return std::visit(visitor{}, v);
}

}  // namespace esflow::graph
