#pragma once
// The commands `esflow load` sends: the bank-account workload generated in
// process (stages/bank_workload.h: the same bytes as the team's JSONL
// generator for a seed) or read from that generator's JSONL, split into the
// setup phase (open_account) and the run phase, with the verification sample.
#include "common/result.h"
#include "stages/bank_workload.h"

#include <iosfwd>
#include <string>
#include <vector>

namespace esflow::load {

// One command, ready for every transport: the record (for verification), the
// HTTP/NATS body (no tenant_id: the header or subject carries the tenant) and
// the payload alone (gRPC's payload_json).
struct load_item {
  stages::bank_command cmd;
  std::string body;
  std::string payload;
};

struct load_workload {
  std::vector<load_item> setup, run;  // run[i].cmd.duplicate_of indexes run
  std::vector<stages::bank_account> sample;
  std::string source;  // "generated (seed S, N commands, A accounts, T tenants)" or the file
};

load_workload generate_workload(const stages::bank_workload_options& options);
result<load_workload> read_workload(const std::string& path);

// Prints the workload as the JSONL generator does, byte for byte: setup and
// run records, then the sample line.
void print_workload(const stages::bank_workload_options& options, std::ostream& out);

}  // namespace esflow::load
