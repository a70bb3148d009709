#pragma once
// The runner node kind's `sagas:` section (docs/contract.md "Runner node"):
//   sagas:
//     Transfer:
//       program: programs/transfer_saga.lua       # defines on_event(state, input)
//       triggers:                                 # events that start or advance an instance
//         - { aggregate_type: Transfer, events: [transfer_requested] }
//       correlate_by: aggregate_id                # a field of the Event, or payload.<path>
//       gas: 10000000                             # optional, per call
//       memory: 64MiB                             # optional, per lane's VM
// Every problem is reported as "file:line: ..." at load time.
#include "common/result.h"
#include "runtime/program.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

namespace esflow::runner {

struct saga_trigger {
  std::string aggregate_type;
  std::vector<std::string> events;  // event types; empty: every event of the type
};

struct saga_config {
  std::string name;  // [A-Za-z][A-Za-z0-9_]{0,63}: a subject token (tenant.<t>.reminder.<saga>)
  std::string program_path;
  std::vector<saga_trigger> triggers;
  std::string correlate_by = "aggregate_id";
  std::uint64_t gas = 10'000'000;
  std::size_t memory = std::size_t{64} << 20;
  // Swapped by runner_service::reload_programs() while inputs run: read it
  // only through current_program() (the caller's copy keeps it alive).
  runtime::program_ptr program;
  runtime::program_ptr current_program() const { return std::atomic_load(&program); }

  // Whether an event of this type starts or advances an instance.
  bool triggered_by(std::string_view aggregate_type, std::string_view event_type) const;
};

bool is_valid_saga_name(std::string_view name);

result<std::vector<saga_config>> parse_sagas(const YAML::Node& section, const std::string& file,
                                             const std::string& base_dir, runtime::program_cache& programs);

}  // namespace esflow::runner
