// esflow: one binary for every node kind. See `esflow --help`.
#include "cli/app.h"
#include "cli/dev.h"
#include "cli/keys.h"
#include "cli/load/load.h"
#include "cli/load/workload.h"
#include "cli/quarantine.h"
#include "cli/replay.h"
#include "cli/tenants.h"
#include "cli/views.h"
#include "common/log.h"

#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <iostream>

namespace {

// The pipelines `esflow dev` runs together in one process on one data
// directory, from the shipped pipelines folder: every shipped node kind (the
// aggregate node, a follower tailing its log, the projection's views, the
// runner's sagas with their outbox relay and scheduler, the gateway in front
// of them on a server of its own, 127.0.0.1:8000). With
// --nats the aggregate node runs on the JetStream backbone (event log on
// AGGREGATE_EVENTS, commands also over NATS request/reply), the follower
// and the projection tail that stream and the gateway sends its commands
// over NATS; without, the gateway calls the process's nodes
// (docs/gateway.md "Dev mode").
const std::vector<std::string> k_dev_pipelines = {"aggregate.yaml",     "follower.yaml",
                                                  "projection.yaml",    "runner-saga.yaml",
                                                  "runner-effect.yaml", "gateway-dev.yaml"};
const std::vector<std::string> k_dev_pipelines_nats = {
    "aggregate-jetstream.yaml",     "follower.yaml",   "projection.yaml", "runner-saga-jetstream.yaml",
    "runner-effect-jetstream.yaml", "gateway-dev.yaml"};

struct node_flags {
  std::string http;
  std::string grpc;
  std::string data_dir;
  std::string nats;
  std::string nats_file;
  std::string node_id;
  bool check = false;
  void add_to(CLI::App* cmd) {
    cmd->add_option("--http", http,
                    "HTTP listen address [default: 127.0.0.1:8080 or the file's settings.http]")
        ->envname("ESFLOW_HTTP_ADDR");
    cmd->add_option("--grpc", grpc,
                    "gRPC listen address (projection: QueryService) [default: the files' settings.grpc; "
                    "empty: no gRPC]")
        ->envname("ESFLOW_GRPC_ADDR");
    cmd->add_option(
           "--data-dir", data_dir,
           "node store directory, shared by every pipeline [default: the files' settings.data_dir, ./data]")
        ->envname("ESFLOW_DATA_DIR");
    cmd->add_option("--nats", nats,
                    "NATS URL: use the JetStream event log (overrides settings.event_log/nats_url) "
                    "[default: the files' settings; dev: embedded log]")
        ->envname("ESFLOW_NATS_URL");
    cmd->add_option("--nats-file", nats_file,
                    "read the NATS URL (it may hold credentials: nats://user:pass@host:port,...) from "
                    "this file, e.g. a mounted secret; --nats wins")
        ->envname("ESFLOW_NATS_URL_FILE");
    cmd->add_option(
           "--node-id", node_id,
           "this node's id in tenant placement: registers in TENANT_PLACEMENT, serves only the tenants "
           "placed on it [default: the files' settings.node_id; empty: every tenant]")
        ->envname("ESFLOW_NODE_ID");
    cmd->add_flag("--check", check,
                  "load, validate and apply the flags to the pipelines, print one line per file, and "
                  "exit 0 without starting anything (exit 2 on a problem)");
  }
  // Each given flag (or its variable) wins over every file's settings, for
  // run exactly as for dev.
  esflow::cli::run_options apply() const {
    esflow::cli::run_options o;
    if (!http.empty()) o.overrides.http = http;
    if (!grpc.empty()) o.overrides.grpc = grpc;
    if (!data_dir.empty()) o.overrides.data_dir = data_dir;
    if (!nats.empty()) o.overrides.nats_url = nats;
    if (!nats_file.empty()) o.nats_url_file = nats_file;
    if (!node_id.empty()) o.overrides.node_id = node_id;
    o.check = check;
    return o;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"esflow: event-sourcing nodes built as flow graphs of declarative stages"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")
      ->envname("ESFLOW_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));
  std::string log_format = "text";
  app.add_option("--log-format", log_format,
                 "text|json: json writes one object per line (time, level, module, message, source, "
                 "and tenant_id, correlation_id, trace_id, aggregate, saga, view where known)")
      ->envname("ESFLOW_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));

  std::vector<std::string> files;
  node_flags run_flags, dev_flags;
  auto* run =
      app.add_subcommand("run", "run the pipelines of FILE... until their sources end or SIGTERM (drains)");
  run->add_option("files", files, "pipeline files")->required()->check(CLI::ExistingFile);
  run_flags.add_to(run);

  auto* dev = app.add_subcommand("dev",
                                 "run every shipped node kind in one process on one data directory "
                                 "(aggregate + follower + projection + runner; embedded log, HTTP; --nats: "
                                 "JetStream + NATS request/reply) and the gateway on "
                                 "http://127.0.0.1:8000 ($ESFLOW_GATEWAY_ADDR) with a dev API key in "
                                 "<data-dir>/dev-key");
  dev_flags.add_to(dev);

  std::vector<std::string> validate_files;
  auto* validate = app.add_subcommand("validate", "check pipeline files; print every problem as file:line");
  validate->add_option("files", validate_files, "pipeline files")->required();

  std::string graph_file, graph_format = "dot";
  auto* graph = app.add_subcommand("graph", "print a pipeline's graph");
  graph->add_option("file", graph_file, "pipeline file")->required();
  graph->add_option("--format", graph_format, "dot|mermaid|json")
      ->check(CLI::IsMember({"dot", "mermaid", "json"}));

  std::string stages_format = "text";
  auto* stages = app.add_subcommand("stages", "list the stage kinds with their parameters and ports");
  stages->add_option("--format", stages_format, "text|json|markdown (markdown: docs/reference/stages.md)")
      ->check(CLI::IsMember({"text", "json", "markdown"}));

  std::string kinds_format = "text";
  auto* kinds = app.add_subcommand(
      "kinds", "list the node kinds (their pipeline-file sections, stages, settings) and the shared stages");
  kinds->add_option("--format", kinds_format, "text|json|markdown (markdown: docs/reference/node-kinds.md)")
      ->check(CLI::IsMember({"text", "json", "markdown"}));

  std::vector<std::string> placement_nodes;
  std::string placement_label = "esflow.node";
  auto* placement = app.add_subcommand("placement", "where stateful nodes run");
  placement->require_subcommand(1);
  auto* constraints = placement->add_subcommand(
      "constraints",
      "print the Docker Swarm placement constraints that pin each stateful node (its data directory "
      "lives on one host) to the host labelled for it, as YAML: <node id>: [\"node.labels.<label> == <node "
      "id>\"]");
  auto* by_node = constraints->add_option("--node-id", placement_nodes,
                                          "a node id ([a-z0-9][a-z0-9_-]{0,62}); repeat it");
  std::string placement_ranges, placement_service = "aggregate";
  auto* by_range = constraints->add_option(
      "--ranges", placement_ranges,
      "tenant ranges by first character (a-h,i-p,q-z) or a JSON/YAML file {\"ranges\": [...]}: one stanza "
      "per range pinning <service>-<range> to hosts with node.labels.tenant_range==<range>");
  constraints->add_option("--service", placement_service,
                          "the service name prefix of --ranges [default: aggregate]");
  by_node->excludes(by_range);
  constraints->add_option("--label", placement_label,
                          "the node label naming the node id a host keeps [default: esflow.node]");

  const char* http_env = std::getenv("ESFLOW_HTTP_ADDR");
  std::string views_url = http_env != nullptr && *http_env != '\0' ? http_env : "127.0.0.1:8080";
  std::string rebuild_view;
  bool rebuild_confirm = false;
  auto* views = app.add_subcommand("views", "a projection node's views (its /admin/views endpoints)");
  views->require_subcommand(1);
  views->add_option("--url", views_url,
                    "the node's HTTP address [default: $ESFLOW_HTTP_ADDR or 127.0.0.1:8080]");
  auto* views_list = views->add_subcommand("list", "position, lag, rows and state of every view");
  auto* views_rebuild = views->add_subcommand(
      "rebuild",
      "rebuild a view from the start of the log into a new generation; queries answer from the current "
      "rows until it has caught up");
  views_rebuild->add_option("view", rebuild_view, "the view")->required();
  views_rebuild->add_flag("--confirm", rebuild_confirm, "start it (it re-reads the whole log)");

  std::string quarantine_url = views_url, quarantine_id;
  int quarantine_limit = 100;
  auto* quarantine =
      app.add_subcommand("quarantine", "a node's quarantined inputs (its /admin/quarantine endpoints)");
  quarantine->require_subcommand(1);
  quarantine
      ->fallthrough();  // `esflow quarantine list --url ADDR` as well as `esflow quarantine --url ADDR list`
  quarantine->add_option("--url", quarantine_url,
                         "the node's HTTP address [default: $ESFLOW_HTTP_ADDR or 127.0.0.1:8080]");
  auto* quarantine_list = quarantine->add_subcommand(
      "list", "id, source, position, attempts, tenant and reason of the quarantined inputs (oldest first)");
  quarantine_list->add_option("--limit", quarantine_limit, "at most this many [default: 100]")
      ->check(CLI::Range(1, 1000));
  auto* quarantine_show = quarantine->add_subcommand("show", "one quarantined input with its whole record");
  quarantine_show->add_option("id", quarantine_id, "the id `list` printed")->required();
  auto* quarantine_retry = quarantine->add_subcommand(
      "retry",
      "run a runner saga record's inputs through the saga again (their markers and the record are deleted; "
      "a failure quarantines them again with attempts + 1); a JetStream consumer's record is taken in again "
      "by the consumer that quarantined it");
  quarantine_retry->add_option("id", quarantine_id, "the id `list` printed")->required();

  std::string replay_url = views_url, replay_saga, replay_tenant;
  std::uint64_t replay_from = 0;
  bool replay_confirm = false;
  auto* replay = app.add_subcommand(
      "replay",
      "run a tenant's trigger events of a saga after a log position through the saga again, ignoring their "
      "input markers (POST /admin/sagas/<saga>/replay on the runner node); a dry run without --confirm");
  replay->add_option("--url", replay_url,
                     "the runner node's HTTP address [default: $ESFLOW_HTTP_ADDR or 127.0.0.1:8080]");
  replay->add_option("--saga", replay_saga, "the saga")->required();
  replay->add_option("--tenant", replay_tenant, "the tenant (\"\" on a single-tenant node)")->required();
  replay->add_option("--from", replay_from, "replay the events after this log position")->required();
  replay->add_flag("--confirm", replay_confirm, "do it (without: answer what would run, change nothing)");

  std::vector<std::string> key_tenants, key_rights;
  std::string key_label, key_file = esflow::cli::default_keys_file();
  auto* keys = app.add_subcommand("keys", "the gateway's API keys (a file of SHA-256 digests)");
  keys->require_subcommand(1);
  auto* keys_add = keys->add_subcommand(
      "add", "make a new API key, print it once on stdout and append only its digest to the key file");
  keys_add
      ->add_option("--tenant", key_tenants,
                   "a tenant the key may use ([A-Za-z0-9_-]{1,64}); repeat it; '*': all")
      ->required();
  keys_add->add_option("--rights", key_rights, "commands,queries,admin (comma separated)")
      ->required()
      ->delimiter(',');
  keys_add->add_option("--label", key_label, "a name for the key, stored beside its digest");
  keys_add->add_option("--file", key_file, "the key file [default: $ESFLOW_KEYS_FILE or ./keys.jsonl]");

  esflow::cli::tenants_options tenants_opts;
  std::string tenant_name, tenant_node, tenant_to;
  std::int64_t tenant_drain_ms = 30000;
  auto* tenants =
      app.add_subcommand("tenants", "tenant placement in the TENANT_PLACEMENT KV bucket (docs/placement.md)");
  tenants->require_subcommand(1);
  auto* tenants_add = tenants->add_subcommand(
      "add",
      "list a tenant (tenants.<t>): on --node, or where the ring puts it; nodes subscribe to its commands");
  tenants_add->add_option("tenant", tenant_name, "the tenant ([A-Za-z0-9_-]{1,64})")->required();
  tenants_add->add_option("--node", tenant_node, "pin it to this node [default: the ring decides]");
  auto* tenants_list = tenants->add_subcommand("list", "the listed tenants and their owners");
  auto* tenants_move = tenants->add_subcommand(
      "move",
      "drain the tenant on its node, compare-and-set its placement, wait until the new node hosts it");
  tenants_move->add_option("tenant", tenant_name, "the tenant")->required();
  tenants_move->add_option("--to", tenant_to, "the node that takes it")->required();
  tenants_move->add_option("--drain-timeout-ms", tenant_drain_ms, "how long the old node may take to drain");
  tenants_move->add_flag(
      "--force", tenants_opts.force,
      "move even when the old node does not answer (it is down; nothing it had in flight was "
      "acknowledged)");
  for (auto* sub : {tenants_add, tenants_list, tenants_move})
    sub->add_option("--nats", tenants_opts.nats_url, "NATS URL of the placement bucket")
        ->envname("ESFLOW_NATS_URL");

  std::string bench_file;
  esflow::cli::bench_options bench_opts;
  std::int64_t bench_messages = -1, bench_commands = -1, bench_accounts = -1, bench_tenants = -1,
               bench_seed = -1;
  std::string bench_data_dir;
  auto* bench = app.add_subcommand(
      "bench",
      "drive a pipeline to its end; print msgs/s and p50/p99 per stage (a command ingest is replaced by "
      "the bank-account workload: accepted/rejected counts)");
  bench
      ->add_option("file", bench_file,
                   "pipeline file (sources: source.generator, source.file, or a command ingest: "
                   "http.commands, nats.request, jetstream.consumer)")
      ->required();
  bench->add_option("--stage", bench_opts.stage, "report only this stage");
  bench->add_option("--messages", bench_messages, "messages per source.generator")
      ->check(CLI::Range(1, 1 << 30));
  bench
      ->add_option("--workload", bench_opts.workload.file,
                   "JSONL of bank workload records or command envelopes, sent instead of the ingest "
                   "[default: generated]")
      ->check(CLI::ExistingFile);
  bench
      ->add_option("--commands", bench_commands,
                   "generated run-phase commands, after one open_account per account [default: 20000]")
      ->check(CLI::Range(0, 1 << 30));
  bench->add_option("--accounts", bench_accounts, "generated accounts [default: 10000]")
      ->check(CLI::Range(1, 1 << 24));
  bench->add_option("--tenants", bench_tenants, "generated tenants [default: 4]")
      ->check(CLI::Range(1, 1 << 16));
  bench->add_option("--seed", bench_seed, "generator seed [default: 42]")->check(CLI::Range(0, 0x7fffffff));
  bench->add_option("--data-dir", bench_data_dir,
                    "node store directory [default: a temporary one, removed after the run]");
  bench->add_option("--format", bench_opts.format, "text|json")->check(CLI::IsMember({"text", "json"}));

  esflow::load::load_options load_opts;
  std::int64_t load_commands = -1, load_accounts = -1, load_tenants = -1, load_seed = -1, load_max = -1;
  double load_duration_s = 60;
  std::int64_t load_timeout_ms = 35000;
  bool load_no_verify = false, load_print = false;
  std::string load_verify_accounts = "all";
  auto* load = app.add_subcommand(
      "load",
      "run the bank-account workload against a running node or gateway from this process, over HTTP, NATS "
      "or gRPC: setup, then C clients; print answers by outcome, commands/s and p50..p999, then verify from "
      "the node's event reads (exit 1 when verification fails)");
  load->add_option("--transport", load_opts.transport.kind, "http|nats|grpc [default: http]")
      ->check(CLI::IsMember({"http", "nats", "grpc"}));
  load->add_option("--url", load_opts.transport.url,
                   "the node or gateway: http://host:port, nats://host:port or host:port (grpc)");
  load->add_option("--read-url", load_opts.read_url,
                   "HTTP address of the event reads for verification [default: --url with --transport http]");
  load->add_option("--key", load_opts.transport.key, "API key sent as Authorization: Bearer (a gateway)")
      ->envname("ESFLOW_API_KEY");
  auto* load_file = load->add_option("--workload", load_opts.workload_file,
                                     "JSONL of the workload generator's records [default: generated]")
                        ->check(CLI::ExistingFile);
  for (auto* generated : {
           load->add_option(
                   "--commands", load_commands,
                   "generated run-phase commands, after one open_account per account [default: 200000]")
               ->check(CLI::Range(0, 1 << 30)),
           load->add_option("--accounts", load_accounts, "generated accounts [default: 10000]")
               ->check(CLI::Range(1, 1 << 24)),
           load->add_option("--tenants", load_tenants, "generated tenants [default: 4]")
               ->check(CLI::Range(1, 1 << 16)),
           load->add_option("--seed", load_seed, "generator seed [default: 42]")
               ->check(CLI::Range(0, 0x7fffffff)),
       })
    generated->excludes(load_file);
  load->add_option("--clients", load_opts.clients, "concurrent clients of the run [default: 16]")
      ->check(CLI::Range(1, esflow::load::k_max_clients));
  load->add_option("--setup-clients", load_opts.setup_clients,
                   "concurrent clients of the setup [default: 48]")
      ->check(CLI::Range(1, esflow::load::k_max_clients));
  load->add_option("--duration", load_duration_s,
                   "stop the run after this many seconds; 0: no limit [default: 60]")
      ->check(CLI::Range(0.0, 86400.0));
  load->add_option("--max-commands", load_max, "stop the run after this many commands [default: all]")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1} << 40));
  load->add_option("--timeout-ms", load_timeout_ms, "bound of each request [default: 35000]")
      ->check(CLI::Range(1, 600000));
  load->add_option("--unavailable-retries", load_opts.unavailable_retries,
                   "sends again of a command answered `unavailable` (backoff 1 ms doubling to 64 ms) "
                   "[default: 100]")
      ->check(CLI::Range(0, 10000));
  load->add_flag("--no-verify", load_no_verify, "skip the verification");
  load->add_option("--verify-accounts", load_verify_accounts,
                   "all: read every account a command was sent to; sample: the workload's sample only "
                   "[default: all]")
      ->check(CLI::IsMember({"all", "sample"}));
  load->add_flag("--progress", load_opts.progress,
                 "a progress line every second on stderr (always on a terminal)");
  load->add_option("--format", load_opts.format, "text|json")->check(CLI::IsMember({"text", "json"}));
  load->add_flag("--print-workload", load_print,
                 "print the generated workload as JSONL (the generator's exact bytes) and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return esflow::cli::k_usage;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  esflow::set_log_format(*esflow::parse_log_format(log_format));  // checked by IsMember above

  if (*run) return esflow::cli::run_command(files, run_flags.apply(), std::cerr);
  if (*dev) {
    auto dir = esflow::cli::find_pipelines_dir(argv[0]);
    if (!dir) {
      std::cerr << "cannot find the pipelines folder (set ESFLOW_PIPELINES_DIR)\n";
      return esflow::cli::k_failure;
    }
    std::vector<std::string> dev_files;
    const bool on_nats = !dev_flags.nats.empty() || !dev_flags.nats_file.empty();
    for (const auto& f : on_nats ? k_dev_pipelines_nats : k_dev_pipelines)
      dev_files.push_back(*dir + "/" + f);
    if (!dev_flags.check) {
      // The gateway's key file (gateway-dev.yaml reads ESFLOW_DEV_KEYS_FILE):
      // made in the data directory the shipped files use (cli/dev.h).
      const auto data_dir = dev_flags.data_dir.empty() ? std::string("./data") : dev_flags.data_dir;
      auto key = esflow::cli::ensure_dev_key(data_dir);
      if (!key.ok()) {
        std::cerr << "esflow dev: the gateway's dev key: " << key.err().message << "\n";
        return esflow::cli::k_failure;
      }
      ::setenv("ESFLOW_DEV_KEYS_FILE", key->keys_file.c_str(), 1);
      // Saga reads: the runner's route on this process's server (--http).
      if (!dev_flags.http.empty()) ::setenv("ESFLOW_RUNNER_HTTP", dev_flags.http.c_str(), 0);
      const char* gw = std::getenv("ESFLOW_GATEWAY_ADDR");
      std::cerr << "gateway on http://" << (gw != nullptr && *gw != '\0' ? gw : "127.0.0.1:8000")
                << " (API key in " << key->key_file << ")\n";
    }
    return esflow::cli::run_command(dev_files, dev_flags.apply(), std::cerr);
  }
  if (*validate) return esflow::cli::validate_command(validate_files, std::cout, std::cerr);
  if (*graph) return esflow::cli::graph_command(graph_file, graph_format, std::cout, std::cerr);
  if (*stages) return esflow::cli::stages_command(stages_format, std::cout);
  if (*kinds) return esflow::cli::kinds_command(kinds_format, std::cout);
  if (*constraints && placement_ranges.empty() && placement_nodes.empty()) {
    std::cerr << "esflow placement constraints: give --node-id ID... or --ranges SPEC|FILE\n";
    return esflow::cli::k_usage;
  }
  if (*constraints && !placement_ranges.empty())
    return esflow::cli::placement_ranges_command(placement_ranges, placement_service, std::cout, std::cerr);
  if (*constraints)
    return esflow::cli::placement_constraints_command(placement_nodes, placement_label, std::cout, std::cerr);
  if (*views_list) return esflow::cli::views_list_command(views_url, std::cout, std::cerr);
  if (*views_rebuild)
    return esflow::cli::views_rebuild_command(views_url, rebuild_view, rebuild_confirm, std::cout, std::cerr);
  if (*quarantine_list)
    return esflow::cli::quarantine_list_command(quarantine_url, quarantine_limit, std::cout, std::cerr);
  if (*quarantine_show)
    return esflow::cli::quarantine_show_command(quarantine_url, quarantine_id, std::cout, std::cerr);
  if (*quarantine_retry)
    return esflow::cli::quarantine_retry_command(quarantine_url, quarantine_id, std::cout, std::cerr);
  if (*replay)
    return esflow::cli::replay_command(replay_url, replay_saga, replay_tenant, replay_from, replay_confirm,
                                       std::cout, std::cerr);
  if (*tenants_add)
    return esflow::cli::tenants_add_command(tenants_opts, tenant_name, tenant_node, std::cout, std::cerr);
  if (*tenants_list) return esflow::cli::tenants_list_command(tenants_opts, std::cout, std::cerr);
  if (*tenants_move) {
    tenants_opts.drain_timeout = std::chrono::milliseconds(tenant_drain_ms);
    return esflow::cli::tenants_move_command(tenants_opts, tenant_name, tenant_to, std::cout, std::cerr);
  }
  if (*keys_add)
    return esflow::cli::keys_add_command(key_file, key_tenants, key_rights, key_label, std::cout, std::cerr);
  if (*bench) {
    if (bench_messages > 0) bench_opts.messages = bench_messages;
    if (bench_commands >= 0) bench_opts.workload.commands = bench_commands;
    if (bench_accounts > 0) bench_opts.workload.accounts = bench_accounts;
    if (bench_tenants > 0) bench_opts.workload.tenants = bench_tenants;
    if (bench_seed >= 0) bench_opts.workload.seed = bench_seed;
    if (!bench_data_dir.empty()) bench_opts.data_dir = bench_data_dir;
    return esflow::cli::bench_command(bench_file, bench_opts, std::cout, std::cerr);
  }
  if (*load) {
    auto& g = load_opts.generated;
    if (load_commands >= 0) g.commands = load_commands;
    if (load_accounts > 0) g.accounts = load_accounts;
    if (load_tenants > 0) g.tenants = load_tenants;
    if (load_seed >= 0) g.seed = static_cast<std::uint32_t>(load_seed);
    if (load_print) {
      esflow::load::print_workload(g, std::cout);
      return std::cout.good() ? esflow::cli::k_ok : esflow::cli::k_failure;
    }
    if (load_opts.transport.url.empty()) {
      std::cerr
          << "esflow load: --url is required (http://host:port, nats://host:port or host:port for grpc)\n";
      return esflow::cli::k_usage;
    }
    load_opts.duration = std::chrono::milliseconds(std::llround(load_duration_s * 1000.0));
    if (load_max >= 0) load_opts.max_commands = load_max;
    load_opts.transport.timeout = std::chrono::milliseconds(load_timeout_ms);
    load_opts.verify = !load_no_verify;
    load_opts.verify_sample_only = load_verify_accounts == "sample";
    return esflow::load::load_command(load_opts, std::cout, std::cerr);
  }
  return esflow::cli::k_usage;
}
