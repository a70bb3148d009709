#include "stages/gateway/gateway_config.h"

#include "graph/node_kind_descriptor.h"
#include "graph/pipeline_loader.h"

#include <charconv>
#include <vector>

namespace esflow::gateway {

bool split_host_port(const std::string& target, std::string& host, int& port) {
  const auto colon = target.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= target.size()) return false;
  host = target.substr(0, colon);
  const auto* first = target.data() + colon + 1;
  const auto* last = target.data() + target.size();
  const auto [p, ec] = std::from_chars(first, last, port);
  return ec == std::errc() && p == last && port > 0 && port <= 65535;
}

result<gateway_config> parse_gateway_section(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir) {
  gateway_config c;
  std::vector<std::string> problems;
  (void)base_dir;  // keys: relative to the working directory, as `esflow keys add` writes it
  if (!section || section.IsNull()) return c;
  if (!section.IsMap()) {
    problems.push_back(graph::yaml_where(file, section) +
                       ": 'gateway' must be a mapping (keys, query_upstream, runner_http, "
                       "runner_grpc, default_timeout_ms, max_in_flight)");
    return graph::section_problems(problems).err();
  }
  const auto text = [&](const YAML::Node& key, const YAML::Node& v) -> std::optional<std::string> {
    if (!v.IsScalar()) {
      problems.push_back(graph::yaml_where(file, v) + ": gateway." + key.as<std::string>() +
                         " must be a scalar");
      return std::nullopt;
    }
    std::string problem;
    auto s = graph::substitute_env(v.Scalar(), {}, problem);
    if (!s) problems.push_back(graph::yaml_where(file, v) + ": " + problem);
    return s;
  };
  const auto integer = [&](const YAML::Node& key, const YAML::Node& v, std::int64_t lo,
                           std::int64_t hi) -> std::optional<std::int64_t> {
    auto s = text(key, v);
    if (!s) return std::nullopt;
    std::int64_t n = 0;
    const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
    if (ec != std::errc() || p != s->data() + s->size() || n < lo || n > hi) {
      problems.push_back(graph::yaml_where(file, v) + ": gateway." + key.as<std::string>() +
                         " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                         "], not '" + *s + "'");
      return std::nullopt;
    }
    return n;
  };
  const auto target = [&](const YAML::Node& key, const YAML::Node& v) -> std::optional<std::string> {
    auto s = text(key, v);
    if (!s || s->empty()) return s;
    std::string host;
    int port = 0;
    if (!split_host_port(*s, host, port)) {
      problems.push_back(graph::yaml_where(file, v) + ": gateway." + key.as<std::string>() +
                         " must be host:port, not '" + *s + "'");
      return std::nullopt;
    }
    return s;
  };
  for (const auto& entry : section) {
    const auto name = entry.first.as<std::string>();
    const auto& v = entry.second;
    if (name == "keys") {
      if (auto s = text(entry.first, v)) {
        if (s->empty())
          problems.push_back(graph::yaml_where(file, v) + ": gateway.keys must name the API key file");
        else
          c.keys = *s;
      }
    } else if (name == "query_upstream") {
      if (auto s = target(entry.first, v)) c.query_upstream = *s;
    } else if (name == "runner_http") {
      if (auto s = target(entry.first, v)) c.runner_http = *s;
    } else if (name == "runner_grpc") {
      if (auto s = target(entry.first, v)) c.runner_grpc = *s;
    } else if (name == "default_timeout_ms") {
      if (auto n = integer(entry.first, v, 1, k_max_timeout_ms)) c.default_timeout_ms = *n;
    } else if (name == "max_in_flight") {
      if (auto n = integer(entry.first, v, 1, 1 << 20)) c.max_in_flight = static_cast<std::size_t>(*n);
    } else {
      problems.push_back(graph::yaml_where(file, entry.first) + ": unknown key gateway." + name +
                         " (keys, query_upstream, runner_http, runner_grpc, default_timeout_ms, "
                         "max_in_flight)");
    }
  }
  if (auto st = graph::section_problems(problems); !st.ok()) return st.err();
  return c;
}

}  // namespace esflow::gateway
