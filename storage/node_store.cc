#include "storage/node_store.h"

#include "storage/keys.h"

#include <rocksdb/db.h>

#include <filesystem>
#include <map>

namespace esflow::storage {
namespace {

// Open stores by normalised directory; weak, so the last user closes it.
struct open_stores {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<node_store>> by_dir;
};

open_stores& registry() {
  static open_stores r;
  return r;
}

}  // namespace

std::string normalise_data_dir(const std::string& dir) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(dir, ec);
  auto n = (ec ? std::filesystem::path(dir) : abs).lexically_normal();
  if (n.has_relative_path() && n.filename().empty()) n = n.parent_path();  // "a/b/" -> "a/b"
  return n.string();
}

node_store::node_store(node_store_options options, std::unique_ptr<db> database)
    : _options(std::move(options)),
      _db(std::move(database)),
      _dedupe(*_db),
      _snapshots(*_db),
      _checkpoints(*_db),
      _quarantine(*_db),
      _sagas(*_db),
      _outbox(*_db),
      _schedules(*_db),
      _readmodels(*_db),
      _tenants(*_db) {}

node_store::~node_store() { ignore(close()); }

result<std::shared_ptr<node_store>> node_store::open(const node_store_options& options) {
  db_options o;
  o.path = options.data_dir;
  o.mode = options.mode;
  o.inject_write_failure = options.inject_write_failure;
  auto d = db::open(std::move(o));
  if (!d.ok()) return std::move(d).err();
  return std::shared_ptr<node_store>(new node_store(options, std::move(d).value()));
}

result<std::shared_ptr<node_store>> node_store::shared(const node_store_options& options) {
  auto& r = registry();
  const auto dir = normalise_data_dir(options.data_dir);
  std::lock_guard lock(r.mu);
  if (auto it = r.by_dir.find(dir); it != r.by_dir.end()) {
    if (auto open = it->second.lock()) {
      if (open->mode() != options.mode)
        return error::make(errc::invalid_config,
                           "data directory " + dir + " is open with durability " +
                               std::string(to_string(open->mode())) + "; another pipeline asks for " +
                               std::string(to_string(options.mode)) + " (one directory, one durability)");
      return open;
    }
  }
  auto o = options;
  o.data_dir = dir;
  auto made = open(o);
  if (!made.ok()) return made;
  r.by_dir[dir] = made.value();
  return made;
}

error node_store::closed() const {
  return error::make(errc::unavailable, "database is closed", "path=" + data_dir());
}

status node_store::commit(write_set& ws) {
  if (ws.met_closed_db()) return closed();
  if (ws.empty()) return {};
  return _db->write(ws.batch());
}

status node_store::commit_unsynced(write_set& ws) {
  if (ws.met_closed_db()) return closed();
  if (ws.empty()) return {};
  return _db->write_unsynced(ws.batch());
}

status node_store::probe(std::chrono::milliseconds budget) const {
  const auto t0 = std::chrono::steady_clock::now();
  // The checkpoints family of the reserved consumer "\x01health" (no consumer
  // name starts with a control byte), so the probe never meets real data.
  keyspace space(*_db, cf::checkpoints);
  const auto key = keys::checkpoint({}, "\x01health");
  std::string value;
  keys::put_u64_be(value, static_cast<std::uint64_t>(t0.time_since_epoch().count()));
  write_set ws(*_db);
  space.put(ws, key, value);
  if (ws.met_closed_db()) return closed();
  if (auto w = _db->write(ws.batch()); !w.ok()) return w;
  auto back = space.get(key);
  if (!back.ok()) return std::move(back).err();
  if (!back.value() || **back != value)
    return error::make(errc::unavailable, "probe read back a different value", "path=" + data_dir());
  const auto took = std::chrono::steady_clock::now() - t0;
  if (took > budget)
    return error::make(
        errc::unavailable,
        "probe took " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
            " ms (budget " + std::to_string(budget.count()) + " ms)",
        "path=" + data_dir());
  return {};
}

std::shared_ptr<read_view> node_store::snapshot() {
  auto* raw = _db->raw();
  if (raw == nullptr) return nullptr;
  return std::make_shared<read_view>(raw, raw->GetSnapshot());
}

status node_store::close() {
  std::lock_guard lock(_close_mu);
  return _db->close();
}

}  // namespace esflow::storage
