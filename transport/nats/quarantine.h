#pragma once
// The `quarantine` column family: messages a consumer gave up on after
// max_deliver attempts (CONTRACT.md "Consumers"). Key: (source, stream
// sequence) as storage::keys::quarantine; value: a JSON record of the message
// and the reason (see jetstream.consumer).
//
// NOTE: thread-safe (RocksDB); the write has the db's durability.
#include "common/result.h"
#include "storage/db.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::nats {

status put_quarantined(storage::db& database, std::string_view source, std::uint64_t stream_sequence,
                       std::string_view record);
// The record, or nullopt when nothing is quarantined under the key.
result<std::optional<std::string>> get_quarantined(storage::db& database, std::string_view source,
                                                   std::uint64_t stream_sequence);

}  // namespace esflow::nats
