#include "cli/load/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

namespace esflow::load {
namespace {

// The nearest-rank quantile, in microseconds.
double quantile_us(const std::vector<std::uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  const auto idx = std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1);
  return static_cast<double>(sorted[idx]) / 1000.0;
}

double round1(double v) { return std::round(v * 10.0) / 10.0; }

std::string codes_text(const std::map<std::string, std::size_t>& codes) {
  std::string s;
  for (const auto& [code, n] : codes) s += " " + code + "=" + std::to_string(n);
  return s;
}

}  // namespace

phase_summary summarize(const phase_result& r) {
  phase_summary s;
  s.name = r.name;
  s.clients = r.clients;
  s.wall_s = r.wall_s;
  s.stopped = r.stopped;
  for (const auto& a : r.answers) {
    switch (a.kind) {
      case outcome::none:
        continue;
      case outcome::accepted:
        ++s.accepted;
        break;
      case outcome::duplicate:
        ++s.duplicate;
        break;
      case outcome::rejected:
        ++s.rejected;
        ++s.rejected_by_code[a.code];
        break;
      case outcome::error:
        ++s.error;
        ++s.error_by_code[a.code];
        break;
    }
    ++s.answered;
  }
  s.retried = r.retried;
  s.commands_per_s = r.wall_s > 0 ? static_cast<double>(s.answered) / r.wall_s : 0;
  s.p50_us = quantile_us(r.latency_ns, 0.5);
  s.p90_us = quantile_us(r.latency_ns, 0.9);
  s.p99_us = quantile_us(r.latency_ns, 0.99);
  s.p999_us = quantile_us(r.latency_ns, 0.999);
  s.max_us = r.latency_ns.empty() ? 0 : static_cast<double>(r.latency_ns.back()) / 1000.0;
  return s;
}

nlohmann::ordered_json to_json(const phase_summary& s) {
  nlohmann::ordered_json j;
  j["clients"] = s.clients;
  j["wall_s"] = std::round(s.wall_s * 1000.0) / 1000.0;
  j["stopped"] = s.stopped;
  j["answered"] = s.answered;
  j["commands_per_s"] = round1(s.commands_per_s);
  j["accepted"] = s.accepted;
  j["duplicate"] = s.duplicate;
  j["rejected"] = s.rejected;
  j["rejected_by_code"] = s.rejected_by_code;
  j["error"] = s.error;
  j["error_by_code"] = s.error_by_code;
  j["retried_unavailable"] = s.retried;
  j["latency_us"] = {{"p50", round1(s.p50_us)},
                     {"p90", round1(s.p90_us)},
                     {"p99", round1(s.p99_us)},
                     {"p999", round1(s.p999_us)},
                     {"max", round1(s.max_us)}};
  return j;
}

void print_text(const phase_summary& s, std::ostream& out) {
  char line[512];
  std::snprintf(line, sizeof line,
                "%-5s C=%d: %.0f commands/s (%zu in %.2f s, %s)  p50 %.0f us  p90 %.0f us  p99 %.0f us  "
                "p999 %.0f us  max %.0f us\n",
                s.name.c_str(), s.clients, s.commands_per_s, s.answered, s.wall_s, s.stopped.c_str(),
                s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us);
  out << line << "  answers: accepted " << s.accepted << "  duplicate " << s.duplicate << "  rejected "
      << s.rejected << "  error " << s.error;
  if (s.retried > 0) out << "  (sent again after unavailable: " << s.retried << ")";
  out << "\n";
  if (!s.rejected_by_code.empty()) out << "  answers rejected:" << codes_text(s.rejected_by_code) << "\n";
  if (!s.error_by_code.empty()) out << "  answers error:" << codes_text(s.error_by_code) << "\n";
}

std::string progress_line(const std::string& phase, const progress_counts& p, const progress_counts& before) {
  const double dt = p.elapsed_s - before.elapsed_s;
  const double rate = dt > 0 ? static_cast<double>(p.answered - before.answered) / dt : 0;
  char line[256];
  std::snprintf(line, sizeof line,
                "%s %.0f s: %zu answered (%.0f/s), accepted %zu duplicate %zu rejected %zu error %zu",
                phase.c_str(), p.elapsed_s, p.answered, rate, p.accepted, p.duplicate, p.rejected, p.error);
  return line;
}

}  // namespace esflow::load
