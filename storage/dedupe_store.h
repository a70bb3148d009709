#pragma once
// The `dedupe` column family: which command ids an event log has answered,
// for `dedupe_ttl` (docs/contract.md 10.5 "Duplicates": at least 24 h, beyond JetStream's
// duplicate window). One codec for both event-log backends.
//
// Key: (tenant, command id) (keys::dedupe). Value: expiry (big-endian u64 ms
// since the epoch: the compaction filter of db.cc reads these first 8 bytes),
// then the layout byte (which backend wrote it: a position only means something
// to its own log; 0x10 set: the request hash is SHA-256), the request hash
// (32 bytes), position, first and last version.
//
// NOTE: thread-safe; entries are written in the event log's own commit batch
//       (put() into a write_set; the embedded log puts encode() into its
//       group-commit WriteBatch), so an entry is never visible without its commit.
#include "common/result.h"
#include "common/sha256.h"
#include "schemas/envelopes.h"
#include "storage/keyspace.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esflow::storage {

// The backend that wrote an entry. Values are on disk: never renumber.
enum class dedupe_origin : std::uint8_t { embedded = 1, jetstream = 2 };

struct dedupe_record {
  std::uint64_t expires_ms = 0;
  // All zero for an entry written before the SHA-256 hash (see decode()).
  sha256_digest request_hash{};
  schemas::position_t position = 0;
  schemas::version_t first_version = 0;
  schemas::version_t last_version = 0;
};

class dedupe_store {
 public:
  explicit dedupe_store(db& database) : _space(database, cf::dedupe) {}

  // The live record of (tenant, command id) written by `origin`; nullopt when
  // unknown, expired at now_ms, or written by the other backend.
  result<std::optional<dedupe_record>> get(std::string_view tenant, std::string_view command_id,
                                           dedupe_origin origin, std::uint64_t now_ms) const;
  void put(write_set& ws, std::string_view tenant, std::string_view command_id, dedupe_origin origin,
           const dedupe_record& record) const;

  static std::string encode(dedupe_origin origin, const dedupe_record& record);
  // False for a truncated value or one of another origin. An entry of the
  // older layout (64-bit FNV-1a hash) decodes with an all-zero request_hash:
  // it is treated as a different hash (a resend of that command id answers
  // command_id_reused until the entry expires), because equality with a
  // SHA-256 digest cannot be checked and accepting any hash would let a
  // changed payload pass as a duplicate.
  static bool decode(std::string_view value, dedupe_origin origin, dedupe_record& out);

 private:
  keyspace _space;
};

}  // namespace esflow::storage
