// esflow bench: one pipeline driven to its end, then throughput and latency
// per stage, and the answers of a workload. How the pipeline is made finite:
// cli/bench_plan.h.
#include "cli/app.h"
#include "cli/bench_plan.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"
#include "stages/workload_tally.h"
#include "transport/node_host.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <thread>

namespace esflow::cli {
namespace {

namespace fs = std::filesystem;

// A fresh data directory for one run, removed with it: a bench never writes
// into (or measures against) the user's ./data unless told to.
class scratch_dir {
 public:
  scratch_dir() {
    std::string pattern = (fs::temp_directory_path() / "esflow-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) _path = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (!_path.empty()) fs::remove_all(_path, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::string& path() const { return _path; }

 private:
  std::string _path;
};

bool finite_source(const std::string& kind) {
  return kind == "source.generator" || kind == "source.file" || kind == "source.workload";
}

nlohmann::json stage_rows(const graph::node& n, const std::string& only, double wall) {
  nlohmann::json rows = nlohmann::json::array();
  const double cores = std::max(1U, std::thread::hardware_concurrency());
  for (const auto& rt : n.stages()) {
    if (!only.empty() && rt->name() != only) continue;
    const auto t = rt->stats().read();
    const auto& h = t.latency;
    const double in =
        static_cast<double>(rt->spec().descriptor->role == graph::stage_role::source ? t.out : t.in);
    // Capacity: what the stage alone could sustain with its concurrency on this machine,
    // from the time its bodies took (async stages: time to completion).
    const double lanes = rt->spec().conc.kind == graph::concurrency::mode::unlimited
                             ? cores
                             : std::min<double>(cores, static_cast<double>(rt->spec().conc.limit));
    const double busy_s = static_cast<double>(h.sum_ns) / 1e9;
    rows.push_back({{"stage", rt->name()},
                    {"kind", rt->spec().kind},
                    {"messages", in},
                    {"errors", t.errors},
                    {"msgs_per_s", wall > 0 ? in / wall : 0.0},
                    {"capacity_msgs_per_s", busy_s > 0 ? in * lanes / busy_s : 0.0},
                    {"p50_us", h.quantile_ns(0.5) / 1000.0},
                    {"p99_us", h.quantile_ns(0.99) / 1000.0}});
  }
  return rows;
}

nlohmann::json commands_json(const stages::workload_tally::counts& c, double wall) {
  return {{"sent", c.sent},
          {"accepted", c.accepted},
          {"duplicates", c.duplicates},
          {"rejected", c.rejected},
          {"unanswered", c.unanswered()},
          {"commands_per_s", wall > 0 ? static_cast<double>(c.sent) / wall : 0.0}};
}

void print_table(std::ostream& out, const nlohmann::json& rows) {
  out << std::left << std::setw(16) << "stage" << std::setw(18) << "kind" << std::right << std::setw(10)
      << "messages" << std::setw(8) << "errors" << std::setw(13) << "msgs/s" << std::setw(15) << "capacity/s"
      << std::setw(10) << "p50 us" << std::setw(10) << "p99 us"
      << "\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(16) << r["stage"].get<std::string>() << std::setw(18)
        << r["kind"].get<std::string>() << std::right << std::fixed << std::setprecision(0) << std::setw(10)
        << r["messages"].get<double>() << std::setw(8) << r["errors"].get<std::uint64_t>() << std::setw(13)
        << r["msgs_per_s"].get<double>() << std::setw(15) << r["capacity_msgs_per_s"].get<double>()
        << std::setprecision(1) << std::setw(10) << r["p50_us"].get<double>() << std::setw(10)
        << r["p99_us"].get<double>() << "\n";
  }
}

// "commands: 2100 sent, 1985 accepted (12 duplicates), 115 rejected (insufficient_funds 115), 1702/s"
void print_commands(std::ostream& out, const std::string& source, const stages::workload_tally::counts& c,
                    double wall) {
  out << "commands ('" << source << "'): " << c.sent << " sent, " << c.accepted << " accepted ("
      << c.duplicates << " duplicates), " << c.rejected_total() << " rejected";
  if (!c.rejected.empty()) {
    out << " (";
    const char* sep = "";
    for (const auto& [code, n] : c.rejected) {
      out << sep << code << " " << n;
      sep = ", ";
    }
    out << ")";
  }
  if (c.unanswered() != 0) out << ", " << c.unanswered() << " unanswered";
  out << ", " << std::fixed << std::setprecision(0) << (wall > 0 ? static_cast<double>(c.sent) / wall : 0.0)
      << " commands/s\n";
}

}  // namespace

int bench_command(const std::string& file, const bench_options& options, std::ostream& out,
                  std::ostream& err) {
  auto spec = graph::load_pipeline_file(file, builtin_registry());
  if (!spec.ok()) {
    err << spec.err().message << "\n";
    return k_usage;
  }
  auto replaced = replace_ingest(*spec, builtin_registry(), options.workload);
  if (!replaced.ok()) {
    err << replaced.err().message << "\n";
    return k_failure;
  }
  for (auto& s : spec->stages) {
    if (s.kind == "source.generator" && options.messages) s.params.set("count", *options.messages);
    if (s.descriptor->role == graph::stage_role::source && !finite_source(s.kind)) {
      err << "bench drives pipelines whose sources end (source.generator, source.file; a command ingest "
             "is replaced by the workload); '"
          << s.name << "' is " << s.kind << "\n";
      return k_usage;
    }
  }
  if (!options.stage.empty() && !spec->find_stage(options.stage)) {
    err << "no stage named '" << options.stage << "' in " << file << "\n";
    return k_usage;
  }
  const auto notes = rate_limit_notes(*spec);
  // Text: before the run, which the limit makes long; JSON keeps stdout parseable.
  auto& note_out = options.format == "json" ? err : out;
  for (const auto& note : notes) note_out << note << std::endl;

  scratch_dir scratch;  // outlives the nodes below
  serve_options so;
  so.start = false;
  so.overrides.data_dir = options.data_dir ? *options.data_dir : scratch.path();
  if (so.overrides.data_dir->empty()) {
    err << "cannot create a temporary data directory in " << fs::temp_directory_path().string() << "\n";
    return k_failure;
  }
  // The host function of run and dev (node store, event log, kind services);
  // its HTTP server takes any free port: a bench pipeline's sources need none.
  const auto pipeline = spec->name;
  auto served = serve_loaded({std::move(spec).value()}, so);
  if (!served.ok()) {
    err << served.err().message << "\n";
    return k_failure;
  }
  auto& n = *served_host(*served.value()).nodes().front();
  const auto start = std::chrono::steady_clock::now();
  start_served(*served.value());
  if (!n.wait_finished(start + std::chrono::minutes(30))) {
    err << "bench did not finish within 30 minutes\n";
    return k_failure;
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto rows = stage_rows(n, options.stage, wall);
  std::vector<std::pair<std::string, stages::workload_tally::counts>> tallies;
  for (const auto& name : replaced.value())
    if (auto t = served_services(*served.value())
                     .find<stages::workload_tally>(stages::workload_tally_name(pipeline, name));
        t && (tallies.empty() || t->read().sent != 0))
      tallies.emplace_back(name, t->read());
  std::uint64_t unanswered = 0;
  for (const auto& [name, c] : tallies) unanswered += c.unanswered();

  if (options.format == "json") {
    nlohmann::json j{{"pipeline", n.spec().name}, {"wall_s", wall}, {"stages", rows}};
    if (!notes.empty()) j["notes"] = notes;
    for (const auto& [name, c] : tallies) j["commands"][name] = commands_json(c, wall);
    out << j.dump(2) << "\n";
  } else {
    out << "pipeline '" << n.spec().name << "': " << std::fixed << std::setprecision(3) << wall << " s\n";
    print_table(out, rows);
    for (const auto& [name, c] : tallies) print_commands(out, name, c, wall);
  }
  if (unanswered != 0) {
    err << unanswered << " commands got no answer (dropped in the pipeline)\n";
    return k_failure;
  }
  return k_ok;
}

}  // namespace esflow::cli
