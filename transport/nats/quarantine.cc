#include "transport/nats/quarantine.h"

#include "storage/keys.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

namespace esflow::nats {

status put_quarantined(storage::db& database, std::string_view source, std::uint64_t stream_sequence,
                       std::string_view record) {
  if (database.raw() == nullptr) return error::make(errc::unavailable, "database is closed");
  rocksdb::WriteBatch batch;
  const auto key = storage::keys::quarantine(source, stream_sequence);
  auto s =
      batch.Put(database.handle(storage::cf::quarantine), key, rocksdb::Slice(record.data(), record.size()));
  if (!s.ok()) return error::make(errc::internal, "quarantine batch: " + s.ToString());
  return database.write(batch);
}

result<std::optional<std::string>> get_quarantined(storage::db& database, std::string_view source,
                                                   std::uint64_t stream_sequence) {
  if (database.raw() == nullptr) return error::make(errc::unavailable, "database is closed");
  std::string value;
  const auto key = storage::keys::quarantine(source, stream_sequence);
  auto s = database.raw()->Get(rocksdb::ReadOptions(), database.handle(storage::cf::quarantine), key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return error::make(errc::unavailable, "reading quarantine: " + s.ToString());
  return std::optional<std::string>(std::move(value));
}

}  // namespace esflow::nats
