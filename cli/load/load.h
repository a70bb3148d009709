#pragma once
// `esflow load`: the bank-account workload against a running node or gateway
// from this process (bench/README.md, README "Load from another process"):
// setup (every open_account) then the measured run, a report by outcome with
// latency quantiles, then the workload's verification from the node's reads.
#include "cli/load/replay.h"
#include "cli/load/transport.h"
#include "stages/bank_workload.h"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

namespace esflow::load {

struct load_options {
  transport_options transport;  // kind, url, key, timeout; clients is set per phase
  std::string read_url;         // verification reads (HTTP); default: transport.url when http
  std::string workload_file;    // generator JSONL; empty: generated
  stages::bank_workload_options generated{.seed = 42, .commands = 200000, .accounts = 10000, .tenants = 4};
  int clients = 16;
  // Below a node's 60 commands waiting at once (http.commands: server_threads
  // - reserved_threads), so setup is not answered 503.
  int setup_clients = 48;
  int unavailable_retries = 100;              // replay.h
  std::chrono::milliseconds duration{60000};  // 0: no limit
  std::optional<std::int64_t> max_commands;
  bool verify = true;
  bool verify_sample_only = false;
  std::string format = "text";  // text | json
  bool progress = false;        // a progress line every second on stderr (also when stderr is a tty)
};

// Exit codes: 0 ran (and verified), 1 verification failed or nothing answered,
// 2 bad usage.
int load_command(const load_options& options, std::ostream& out, std::ostream& err);

}  // namespace esflow::load
