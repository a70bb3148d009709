#pragma once
// The esflow commands as functions, so tests drive them in-process with the
// same code paths as the binary.
#include "common/result.h"
#include "graph/stage_registry.h"

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::transport {
class node_host;
}

namespace esflow::cli {

// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid pipeline file.
enum exit_code : int { k_ok = 0, k_failure = 1, k_usage = 2 };

struct run_options {
  std::string http = "127.0.0.1:8080";
  bool http_explicit = false;  // --http / ESFLOW_HTTP_ADDR given: wins over the file's settings.http
};

// The registry of every stage kind linked into this binary.
const graph::stage_registry& builtin_registry();

int validate_command(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);
int graph_command(const std::string& file, const std::string& format, std::ostream& out, std::ostream& err);
int stages_command(const std::string& format, std::ostream& out);
int run_command(const std::vector<std::string>& files, const run_options& options, std::ostream& err);

struct bench_options {
  std::optional<std::int64_t> messages;  // overrides every source.generator's count
  std::string stage;                     // report only this stage
  std::string format = "text";           // text | json
};
int bench_command(const std::string& file, const bench_options& options, std::ostream& out,
                  std::ostream& err);

// Node(s) of pipeline files served in-process exactly as run_command wires them
// (one HTTP server and service registry shared by every node, the admin routes,
// then start): for tests and benches. NOTE: the destructor drains every node,
// then stops the server.
class served_nodes;
struct serve_options {
  std::string http = "127.0.0.1:0";                 // port 0 picks a free one
  const graph::stage_registry* registry = nullptr;  // builtin_registry() when null
};
result<std::shared_ptr<served_nodes>> serve_nodes(const std::vector<std::string>& files,
                                                  const serve_options& options = {});
// Base URL ("http://127.0.0.1:port") of served nodes.
std::string served_url(const served_nodes& nodes);
// The host of served nodes (its nodes, health checks, metrics).
transport::node_host& served_host(served_nodes& nodes);
// Drains every node (in-flight messages finish) and stops the server; idempotent.
status stop_served(served_nodes& nodes);

// Where shipped pipeline files live: $ESFLOW_PIPELINES_DIR, ./pipelines, or
// next to the binary (../pipelines, ../../pipelines).
std::optional<std::string> find_pipelines_dir(const std::string& argv0);

}  // namespace esflow::cli
