#pragma once
// The `gateway:` section of a gateway pipeline file (docs/gateway.md "The
// section"): where the keys are, the upstreams, the default deadline and the
// in-flight bound. Parsed once at load time (esflow validate names every
// problem as file:line) and again when the node's service is made.
//
//   gateway:
//     keys: ${ESFLOW_KEYS_FILE:-./keys.jsonl}      # the API key file (stages/gateway/README.md)
//     query_upstream: 127.0.0.1:9090               # QueryService of a projection node
//     runner_http: 127.0.0.1:8081                  # saga reads; empty: 404 not_found
//     runner_grpc: 127.0.0.1:9091                  # RunnerAdmin (/admin/runner/*); empty: 404 not_found
//     default_timeout_ms: 5000                     # without x-request-timeout
//     max_in_flight: 1024                          # upstream calls at once; beyond, 503
//
// NOTE: pure; `${VAR:-default}` is substituted in every scalar (the loader
// substitutes settings and stage params, not kinds' sections).
#include "common/result.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <string>

namespace esflow::gateway {

inline constexpr std::int64_t k_max_timeout_ms = 30000;

struct gateway_config {
  std::string keys = "./keys.jsonl";  // relative to the working directory (as `esflow keys add`)
  std::string query_upstream;         // host:port; "" -> queries answer 503 unavailable
  std::string runner_http;            // host:port; "" -> saga reads answer 404 not_found
  std::string runner_grpc;            // host:port; "" -> /admin/runner/* answer 404 not_found
  std::int64_t default_timeout_ms = 5000;
  std::size_t max_in_flight = 1024;
};

// `section` may be null (a pipeline using the gateway stages without the
// section gets the defaults). Problems: invalid_config, one "file:line: what"
// per line.
result<gateway_config> parse_gateway_section(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir);

// "host:port" with a non-empty host and a port 1..65535.
bool split_host_port(const std::string& target, std::string& host, int& port);

}  // namespace esflow::gateway
