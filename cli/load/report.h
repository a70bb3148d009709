#pragma once
// A phase's figures (answers by outcome and code, commands/s, latency
// quantiles) as text or JSON, and the progress line.
#include "cli/load/replay.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <iosfwd>
#include <map>
#include <string>

namespace esflow::load {

struct phase_summary {
  std::string name;
  int clients = 0;
  double wall_s = 0;
  std::size_t answered = 0, accepted = 0, duplicate = 0, rejected = 0, error = 0;
  std::size_t retried = 0;  // sends again after `unavailable` (not answers)
  std::map<std::string, std::size_t> rejected_by_code, error_by_code;
  double commands_per_s = 0;  // answered (any outcome) over the phase's wall time
  double p50_us = 0, p90_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
  std::string stopped;
};

phase_summary summarize(const phase_result& r);
nlohmann::ordered_json to_json(const phase_summary& s);
// "run   C=16: 3650 commands/s (45000 in 12.33 s, end)  p50 .. us ..", "  answers: accepted ..",
// and, when there are any, a line of rejected and of error codes.
void print_text(const phase_summary& s, std::ostream& out);
// One line, no newline: "run 12 s: 45000 answered (3650/s), accepted .. duplicate .. rejected .. error .."
std::string progress_line(const std::string& phase, const progress_counts& p, const progress_counts& before);

}  // namespace esflow::load
