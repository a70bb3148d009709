#pragma once
// The stored value of a view row (the `readmodels` row entry): the version of
// the last event folded into it, the log position of that event's commit,
// whether the row is deleted (a tombstone keeps the version, so a replay
// after a restart skips events the row already holds, even for a row the
// program deleted), and the row's JSON.
//   byte 0: format (1) | byte 1: flags (bit 0 deleted) | u64 BE version | u64 BE position | JSON
#include "schemas/envelopes.h"

#include <optional>
#include <string>
#include <string_view>

namespace esflow::projection {

struct row_value {
  schemas::version_t version = 0;
  schemas::position_t position = 0;
  bool deleted = false;
  std::string json;  // empty when deleted
};

std::string encode_row(const row_value& r);
// nullopt: not a row value of this format.
std::optional<row_value> decode_row(std::string_view bytes);

}  // namespace esflow::projection
