#pragma once
// The `quarantine` column family: inputs a consumer gave up on after its
// delivery attempts (docs/contract.md "Consumers"), keyed by (source, position) —
// e.g. (`esflow-aggregate-ingest`, stream sequence). The record is the
// consumer's JSON description of the message and the reason.
//
// NOTE: thread-safe; put() writes with the db's durability at once (a
//       poison message is terminated at the server only after it is stored).
#include "common/result.h"
#include "storage/keyspace.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::storage {

struct quarantined {
  std::string source;
  std::uint64_t position = 0;
  std::string record;
};

class quarantine_store {
 public:
  explicit quarantine_store(db& database) : _space(database, cf::quarantine) {}

  status put(std::string_view source, std::uint64_t position, std::string_view record) const;
  // The same inside a caller's write_set (atomic with what the input changed).
  void put(write_set& ws, std::string_view source, std::uint64_t position, std::string_view record) const;
  result<std::optional<std::string>> get(std::string_view source, std::uint64_t position) const;
  // Every quarantined input in (source, position) order, at most limit.
  result<std::vector<quarantined>> list(std::size_t limit) const;
  void erase(write_set& ws, std::string_view source, std::uint64_t position) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
