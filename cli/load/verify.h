#pragma once
// The workload's verification after a run (bench/README.md "The bank-account
// workload"), from the node's reads over HTTP
// (GET /v1/aggregates/Account/<id>/events, a gateway's too):
//
// - every stored command id once (stored_twice), every accepted one stored
//   (accepted_not_stored), no rejected one stored (rejected_stored), nothing
//   else stored (unexpected_stored: a command never sent, or a node that
//   was not fresh);
// - each account's events fold: versions 1, 2, ..., account_opened first,
//   balance never negative (fold), and the final balance equals the
//   client's model: accepted deposits minus accepted withdrawals (balance);
// - every re-send of an accepted command answered as a duplicate
//   (duplicate_not_answered_duplicate).
//
// An error answer (contract 10.6: may or may not be committed) is unknown:
// its command may be stored once or not at all, and the model counts it
// when it is.
#include "cli/load/outcome.h"
#include "cli/load/workload.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace esflow::load {

struct verify_options {
  std::string read_url;      // http://host:port
  std::string key;           // Authorization: Bearer (a gateway's key with the queries right)
  bool sample_only = false;  // read only the sample accounts (else every account a command was sent to)
  std::chrono::milliseconds timeout{35000};
};

struct verify_failure {
  std::string check;  // accepted_not_stored, stored_twice, ...
  std::size_t count = 0;
  std::string example;  // "tenant-1/acc-00042: command <id>"
};

struct verify_result {
  bool passed = false;
  std::size_t accounts_read = 0, sample_accounts = 0, events_stored = 0, accepted = 0, unknown = 0;
  std::vector<verify_failure> failures;
};

verify_result verify(const verify_options& options, const load_workload& w, const std::vector<answer>& setup,
                     const std::vector<answer>& run);

nlohmann::ordered_json to_json(const verify_result& v);
void print_text(const verify_result& v, std::ostream& out);
// "accepted_not_stored: 1 accepted command not stored (e.g. ...)": one line per failure.
std::string failure_text(const verify_failure& f);

}  // namespace esflow::load
