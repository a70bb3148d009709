#include "cli/load/load.h"

#include "cli/load/http_client.h"
#include "cli/load/report.h"
#include "cli/load/verify.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>
#include <mutex>
#include <unistd.h>

namespace esflow::load {
namespace {

constexpr int k_ok = 0, k_failure = 1, k_usage = 2;
// The setup phase is not bounded by --duration (every account must be open
// before the run), but still bounded.
constexpr auto k_setup_limit = std::chrono::minutes(10);

// Progress on stderr: rewritten in place on a terminal, one line a second otherwise.
class progress_printer {
 public:
  progress_printer(std::ostream& err, bool tty) : _err(err), _tty(tty) {}
  progress_fn for_phase(const std::string& phase) {
    _before = {};
    return [this, phase](const progress_counts& p) {
      std::lock_guard lock(_mu);
      const auto line = progress_line(phase, p, _before);
      _before = p;
      if (_tty)
        _err << "\r" << line << "\x1b[K" << std::flush;
      else
        _err << line << "\n" << std::flush;
      _dirty = _tty;
    };
  }
  void end_phase() {
    std::lock_guard lock(_mu);
    if (_dirty) _err << "\n" << std::flush;
    _dirty = false;
  }

 private:
  std::ostream& _err;
  bool _tty;
  std::mutex _mu;
  progress_counts _before;  // guarded by _mu
  bool _dirty = false;      // guarded by _mu: a line without its newline
};

}  // namespace

int load_command(const load_options& o, std::ostream& out, std::ostream& err) {
  if (o.format != "text" && o.format != "json") {
    err << "esflow load: --format " << o.format << ": text or json\n";
    return k_usage;
  }
  std::string read_url = o.read_url;
  if (read_url.empty() && o.transport.kind == "http") read_url = o.transport.url;
  if (o.verify) {
    if (read_url.empty()) {
      err << "esflow load: verification reads events over HTTP: give --read-url http://host:port with "
             "--transport "
          << o.transport.kind << " (or --no-verify)\n";
      return k_usage;
    }
    if (auto st = check_http_url(read_url, "--read-url"); !st.ok()) {
      err << "esflow load: " << st.err().message << "\n";
      return k_usage;
    }
  }

  auto workload = o.workload_file.empty() ? result<load_workload>(generate_workload(o.generated))
                                          : read_workload(o.workload_file);
  if (!workload.ok()) {
    err << "esflow load: " << workload.err().message << "\n";
    return k_usage;
  }
  const auto& w = *workload;

  auto topts = o.transport;
  topts.clients = std::max(o.clients, o.setup_clients);
  auto opened = open_transport(topts);
  if (!opened.ok()) {
    err << "esflow load: " << opened.err().message << "\n";
    return opened.err().code == errc::invalid_config ? k_usage : k_failure;
  }
  auto& t = **opened;

  const bool json = o.format == "json";
  if (!json)
    out << "workload: " << w.source << ": " << w.setup.size() << " setup, " << w.run.size()
        << " run commands, " << w.sample.size() << " sample accounts; transport " << o.transport.kind << " "
        << o.transport.url << "\n"
        << std::flush;
  progress_printer printer(err, ::isatty(STDERR_FILENO) == 1);
  const bool show_progress = o.progress || ::isatty(STDERR_FILENO) == 1;

  phase_limits setup_limits;
  setup_limits.clients = o.setup_clients;
  setup_limits.deadline = load_clock::now() + k_setup_limit;
  setup_limits.timeout = o.transport.timeout;
  setup_limits.unavailable_retries = o.unavailable_retries;
  const auto setup =
      replay("setup", t, w.setup, setup_limits, show_progress ? printer.for_phase("setup") : nullptr);
  printer.end_phase();
  const auto setup_sum = summarize(setup);
  if (!json) print_text(setup_sum, out);
  if (setup_sum.answered > 0 && setup_sum.error == setup_sum.answered) {
    // Nothing but errors: the URL is wrong or the node is down; a run would measure that.
    err << "esflow load: no setup command was answered by " << o.transport.url << " ("
        << setup_sum.error_by_code.begin()->first << "); stopping\n";
    return k_failure;
  }

  phase_limits run_limits;
  run_limits.clients = o.clients;
  if (o.duration.count() > 0) run_limits.deadline = load_clock::now() + o.duration;
  if (o.max_commands)
    run_limits.max_commands = static_cast<std::size_t>(std::max<std::int64_t>(0, *o.max_commands));
  run_limits.timeout = o.transport.timeout;
  run_limits.unavailable_retries = o.unavailable_retries;
  const auto run = replay("run", t, w.run, run_limits, show_progress ? printer.for_phase("run") : nullptr);
  printer.end_phase();
  const auto run_sum = summarize(run);
  if (!json) print_text(run_sum, out);

  std::optional<verify_result> verified;
  if (o.verify) {
    verify_options vo;
    vo.read_url = read_url;
    vo.key = o.transport.key;
    vo.sample_only = o.verify_sample_only;
    vo.timeout = o.transport.timeout;
    verified = verify(vo, w, setup.answers, run.answers);
    if (!json) print_text(*verified, out);
    for (const auto& f : verified->failures)
      err << "esflow load: verification failed: " << failure_text(f) << "\n";
  }

  if (json) {
    nlohmann::ordered_json j;
    j["transport"] = o.transport.kind;
    j["url"] = o.transport.url;
    j["workload"] = {{"source", w.source},
                     {"setup_commands", w.setup.size()},
                     {"run_commands", w.run.size()},
                     {"sample_accounts", w.sample.size()}};
    j["setup"] = to_json(setup_sum);
    j["run"] = to_json(run_sum);
    j["verification"] = verified ? to_json(*verified) : nlohmann::ordered_json(nullptr);
    out << j.dump(2) << "\n";
  }
  out << std::flush;
  return verified && !verified->passed ? k_failure : k_ok;
}

}  // namespace esflow::load
