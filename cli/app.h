#pragma once
// The esflow commands as functions, so tests drive them in-process with the
// same code paths as the binary.
#include "cli/bench_plan.h"
#include "common/result.h"
#include "common/service_registry.h"
#include "graph/kind_registry.h"
#include "graph/pipeline_spec.h"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace esflow::transport {
class node_host;
}
namespace esflow::storage {
class event_log_factory;
}

namespace esflow::cli {

// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid pipeline file.
enum exit_code : int { k_ok = 0, k_failure = 1, k_usage = 2 };

// What `--http`, `--grpc`, `--data-dir` and `--nats` (and their environment variables)
// mean for every command that runs nodes (run, dev, bench, tests): each given
// one wins over every pipeline file's settings (`--nats` also selects the
// jetstream event log).
struct node_overrides {
  std::optional<std::string> http;
  std::optional<std::string> grpc;  // --grpc: every file's settings.grpc
  std::optional<std::string> data_dir;
  std::optional<std::string> nats_url;
  std::optional<std::string> node_id;  // --node-id: every file's settings.node_id
};

struct run_options {
  node_overrides overrides{};
  // --nats-file / ESFLOW_NATS_URL_FILE: the NATS URL is read from this file
  // (a mounted secret) unless overrides.nats_url is set.
  std::optional<std::string> nats_url_file;
  // --check: load and validate the files with the overrides applied, print
  // one line per file, exit without starting anything.
  bool check = false;
};

// The registry of every stage kind and node kind linked into this binary.
const graph::kind_registry& builtin_registry();
// The event-log backends linked into this binary (embedded, jetstream).
std::shared_ptr<storage::event_log_factory> builtin_event_logs();
// format: text | json | markdown (the markdown is docs/reference/node-kinds.md).
int kinds_command(const std::string& format, std::ostream& out);
// `esflow placement constraints`: for each node id a YAML line
// `<id>: ["node.labels.<label> == <id>"]`, the Swarm constraints pinning the
// node (its data directory lives on one host) to the host carrying that label.
// A node id outside [a-z0-9][a-z0-9_-]{0,62}, or given twice: exit 2.
int placement_constraints_command(const std::vector<std::string>& node_ids, const std::string& label,
                                  std::ostream& out, std::ostream& err);

int validate_command(const std::vector<std::string>& files, std::ostream& out, std::ostream& err);
int graph_command(const std::string& file, const std::string& format, std::ostream& out, std::ostream& err);
// format: text | json | markdown (the markdown is docs/reference/stages.md).
int stages_command(const std::string& format, std::ostream& out);
int run_command(const std::vector<std::string>& files, const run_options& options, std::ostream& err);

// bench (cli/bench.cc): a command ingest (HTTP, NATS) is replaced by the
// workload (cli/bench_plan.h); the node store is a temporary directory unless
// data_dir is given.
struct bench_options {
  std::optional<std::int64_t> messages;  // overrides every source.generator's count
  std::string stage;                     // report only this stage
  std::string format = "text";           // text | json
  workload_choice workload;
  std::optional<std::string> data_dir;
};
int bench_command(const std::string& file, const bench_options& options, std::ostream& out,
                  std::ostream& err);

// THE host function: node(s) of pipeline files served in one process — one
// HTTP server, node host and service registry shared by every node (so one
// node store and one event log per data directory, whatever the node kind),
// the admin routes, then start. run, dev, bench and the tests all build nodes
// through it. NOTE: the destructor drains every node,
// then stops the server.
class served_nodes;
struct serve_options {
  std::string http = "127.0.0.1:0";                // port 0 picks a free one (unless overrides.http)
  const graph::kind_registry* registry = nullptr;  // builtin_registry() when null
  node_overrides overrides{};
  // Tests: runs on the services before any node is built (e.g. to put a test source's feed).
  std::function<void(esflow::service_registry&)> prepare{};
  // false: built but not started (start_served starts them).
  bool start = true;
};
result<std::shared_ptr<served_nodes>> serve_nodes(const std::vector<std::string>& files,
                                                  const serve_options& options = {});
// The same for pipelines already loaded (bench drives edited specs).
result<std::shared_ptr<served_nodes>> serve_loaded(std::vector<graph::pipeline_spec> specs,
                                                   const serve_options& options = {});
// Base URL ("http://127.0.0.1:port") of served nodes.
std::string served_url(const served_nodes& nodes);
// The host of served nodes (its nodes, health checks, metrics).
transport::node_host& served_host(served_nodes& nodes);
// The services every served node shares (node store, event log, kind services).
esflow::service_registry& served_services(served_nodes& nodes);
// Starts nodes served with start = false.
void start_served(served_nodes& nodes);
// Drains every node (in-flight messages finish) and stops the server; idempotent.
status stop_served(served_nodes& nodes);

// Where shipped pipeline files live: $ESFLOW_PIPELINES_DIR, ./pipelines, or
// next to the binary (../pipelines, ../../pipelines).
std::optional<std::string> find_pipelines_dir(const std::string& argv0);

}  // namespace esflow::cli
