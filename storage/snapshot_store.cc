#include "storage/snapshot_store.h"

#include "storage/codec.h"
#include "storage/keys.h"

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <functional>

namespace esflow::storage {
namespace {

constexpr std::uint8_t snapshot_format = 1;

// value: format, version, log position, created_at, state JSON.
std::string encode(const schemas::snapshot& s) {
  std::string out;
  out.reserve(24 + s.created_at.size() + s.state_json.size());
  codec::writer w(out);
  w.u8(snapshot_format);
  w.varint(s.version);
  w.varint(s.log_position);
  w.str(s.created_at);
  w.str(s.state_json);
  return out;
}

bool decode(std::string_view value, schemas::snapshot& s) {
  codec::reader r(value);
  if (r.u8() != snapshot_format) return false;
  s.version = r.varint();
  s.log_position = r.varint();
  s.created_at = r.str();
  s.state_json = r.str();
  return r.ok() && r.done();
}

std::string ctx(std::string_view tenant, std::string_view type, std::string_view id) {
  return "tenant=" + std::string(tenant) + " aggregate=" + std::string(type) + "/" + std::string(id) +
         " cf=snapshots";
}

// Reads the stored snapshot of key into out; false when there is none.
result<bool> load(db& d, const std::string& key, std::string_view tenant, std::string_view type,
                  std::string_view id, schemas::snapshot& out) {
  std::string value;
  auto s = d.raw()->Get(rocksdb::ReadOptions(), d.handle(cf::snapshots), key, &value);
  if (s.IsNotFound()) return false;
  if (!s.ok())
    return error::make(errc::unavailable, "reading snapshot: " + s.ToString(), ctx(tenant, type, id));
  if (!decode(value, out)) return error::make(errc::internal, "corrupt snapshot", ctx(tenant, type, id));
  out.tenant_id = tenant;
  out.aggregate_type = type;
  out.aggregate_id = id;
  return true;
}

}  // namespace

status snapshot_store::put(const schemas::snapshot& snap) {
  if (_db.raw() == nullptr) return error::make(errc::unavailable, "database is closed", "cf=snapshots");
  auto key = keys::aggregate(snap.tenant_id, snap.aggregate_type, snap.aggregate_id);
  std::lock_guard lock(_stripes[std::hash<std::string>{}(key) % _stripes.size()]);
  schemas::snapshot stored;
  auto found = load(_db, key, snap.tenant_id, snap.aggregate_type, snap.aggregate_id, stored);
  if (!found) return std::move(found).err();
  if (*found && stored.version >= snap.version) {
    return error::make(errc::version_conflict,
                       "snapshot version " + std::to_string(snap.version) + " is not newer than stored " +
                           std::to_string(stored.version),
                       ctx(snap.tenant_id, snap.aggregate_type, snap.aggregate_id));
  }
  rocksdb::WriteBatch wb;
  wb.Put(_db.handle(cf::snapshots), key, encode(snap));
  return _db.write_unsynced(wb);
}

result<std::optional<schemas::snapshot>> snapshot_store::get(std::string_view tenant, std::string_view type,
                                                             std::string_view id) {
  if (_db.raw() == nullptr) return error::make(errc::unavailable, "database is closed", "cf=snapshots");
  schemas::snapshot out;
  auto found = load(_db, keys::aggregate(tenant, type, id), tenant, type, id, out);
  if (!found) return std::move(found).err();
  if (!*found) return std::optional<schemas::snapshot>{};
  return std::optional<schemas::snapshot>{std::move(out)};
}

}  // namespace esflow::storage
