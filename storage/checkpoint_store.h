#pragma once
// The `checkpoints` column family: the last log position a consumer (a saga
// runner, a projection, a follower) has processed, per (tenant, consumer).
// Tenant "" holds a consumer's global checkpoint. A consumer writes its
// checkpoint in the same write_set as the effects of the input it covers, so
// a restart resumes exactly after the last input whose effects are stored.
//
// NOTE: thread-safe; the db must outlive the store.
#include "common/result.h"
#include "schemas/envelopes.h"
#include "storage/keyspace.h"

#include <optional>
#include <string_view>

namespace esflow::storage {

class checkpoint_store {
 public:
  explicit checkpoint_store(db& database) : _space(database, cf::checkpoints) {}

  // The stored position, or nullopt when the consumer never committed one.
  result<std::optional<schemas::position_t>> get(std::string_view tenant, std::string_view consumer) const;
  void put(write_set& ws, std::string_view tenant, std::string_view consumer,
           schemas::position_t position) const;

 private:
  keyspace _space;
};

}  // namespace esflow::storage
