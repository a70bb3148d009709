#pragma once
// The bank-account workload of bench/README.md as commands: generated
// (deterministic, seeded; the same sequence as the team's JSONL generator for
// the same seed, commands and accounts) or read from a JSONL file of that
// generator's records or of command envelopes (docs/contract.md).
#include "common/result.h"

#include <cstdint>
#include <string>
#include <vector>

namespace esflow::stages {

struct bank_workload_options {
  std::uint32_t seed = 42;
  std::int64_t commands = 20000;  // run phase; the setup phase (one open_account per account) is extra
  std::int64_t accounts = 10000;
  std::int64_t tenants = 4;
};

// One record of the workload (the generator's JSONL fields).
struct bank_command {
  bool setup = false;  // phase "setup" (open_account), else "run"
  std::int64_t seq = 0;
  std::string command_id, tenant, account_id, type;  // type: open_account | deposit | withdraw
  std::int64_t amount = 0;                           // deposit / withdraw
  std::int64_t duplicate_of = -1;                    // run seq re-sent (same command id), -1 = original
};

// One account of the verification sample (the generator's "sample" line).
struct bank_account {
  std::string tenant, account_id;
};

// A whole workload as the generator prints it: setup then run records, and
// the verification sample.
struct bank_workload {
  std::vector<bank_command> commands;
  std::vector<bank_account> sample;
};

// What a workload source sends: the transport tenant ("" = none) and the
// command envelope (POST /v1/commands body).
struct workload_item {
  std::string tenant;
  std::string body;
};

// Setup phase then run phase, in send order.
std::vector<bank_command> generate_bank_workload(const bank_workload_options& options);
// The verification sample: min(100, accounts) distinct accounts, drawn from
// their own PRNG stream (so it does not depend on the number of commands).
std::vector<bank_account> bank_workload_sample(const bank_workload_options& options);
// The generator's last line: {"phase":"sample","accounts":[...]} (its exact bytes).
std::string sample_line(const std::vector<bank_account>& sample);
// Generator records only ("phase" setup/run/sample): what a replay needs to
// verify (type, amount, duplicate_of). Fails with "file:line: ..." on any
// other line (a command envelope carries none of that).
result<bank_workload> read_bank_workload(const std::string& path);

// The command envelope of one record (aggregate type Account; tenant_id only
// when `with_tenant`, i.e. in multi-tenant mode).
std::string command_body(const bank_command& c, bool with_tenant);
// The generator's JSONL line of one record (its exact bytes).
std::string workload_line(const bank_command& c);

// Every command of a JSONL file: generator records ("phase" setup/run; the
// "sample" line is skipped) or command envelopes (an object with
// "aggregate_type"; its "tenant_id" is the tenant). Blank lines are skipped;
// anything else fails with "file:line: ...".
result<std::vector<workload_item>> read_workload_file(const std::string& path, bool with_tenant);

}  // namespace esflow::stages
