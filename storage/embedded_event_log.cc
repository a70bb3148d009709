#include "storage/embedded_event_log.h"

#include "common/log.h"
#include "common/named_thread.h"
#include "storage/batch_queue.h"
#include "storage/codec.h"
#include "storage/dedupe_store.h"
#include "storage/keys.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>

namespace esflow::storage {
namespace {

constexpr std::uint8_t commit_format = 1;

std::uint64_t system_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string aggregate_ctx(std::string_view tenant, std::string_view type, std::string_view id) {
  std::string ctx = "tenant=";
  ctx += tenant;
  ctx += " aggregate=";
  ctx += type;
  ctx += '/';
  ctx += id;
  return ctx;
}

error rocks_error(const rocksdb::Status& s, std::string_view what, cf family, std::string ctx = {}) {
  if (!ctx.empty()) ctx += ' ';
  ctx += "cf=";
  ctx += to_string(family);
  return error::make(errc::unavailable, std::string(what) + ": " + s.ToString(), std::move(ctx));
}

error corrupt(std::string_view what, cf family, std::uint64_t where) {
  return error::make(errc::internal, "corrupt " + std::string(what),
                     "cf=" + std::string(to_string(family)) + " at=" + std::to_string(where));
}

// events value: format, tenant, type, id, command id, first version, count,
// then per event: event id, event type, payload, correlation id, trace id, timestamp.
std::string encode_commit(const append_request& r, version_t first) {
  std::string out;
  std::size_t size =
      32 + r.tenant_id.size() + r.aggregate_type.size() + r.aggregate_id.size() + r.command_id.size();
  for (const auto& e : r.events) {
    size += 12 + e.event_id.size() + e.event_type.size() + e.payload_json.size() + e.correlation_id.size() +
            e.trace_id.size() + e.timestamp.size();
  }
  out.reserve(size);
  codec::writer w(out);
  w.u8(commit_format);
  w.str(r.tenant_id);
  w.str(r.aggregate_type);
  w.str(r.aggregate_id);
  w.str(r.command_id);
  w.varint(first);
  w.varint(r.events.size());
  for (const auto& e : r.events) {
    w.str(e.event_id);
    w.str(e.event_type);
    w.str(e.payload_json);
    w.str(e.correlation_id);
    w.str(e.trace_id);
    w.str(e.timestamp);
  }
  return out;
}

bool decode_commit(std::string_view value, schemas::commit& c) {
  codec::reader r(value);
  if (r.u8() != commit_format) return false;
  c.tenant_id = r.str();
  c.aggregate_type = r.str();
  c.aggregate_id = r.str();
  c.command_id = r.str();
  c.first_version = r.varint();
  auto count = r.varint();
  if (!r.ok() || count > value.size()) return false;
  c.events.resize(count);
  for (std::size_t i = 0; i < count; ++i) {
    auto& e = c.events[i];
    e.tenant_id = c.tenant_id;
    e.aggregate_type = c.aggregate_type;
    e.aggregate_id = c.aggregate_id;
    e.command_id = c.command_id;
    e.version = c.first_version + i;
    e.event_id = r.str();
    e.event_type = r.str();
    e.payload_json = r.str();
    e.correlation_id = r.str();
    e.trace_id = r.str();
    e.timestamp = r.str();
  }
  return r.ok() && r.done();
}

struct pending {
  append_request request;
  event_log::append_callback done;
};

// A command id accepted earlier in the batch being built: its hash and the
// index of its outcome.
struct staged_command {
  sha256_digest hash;
  std::size_t index;
};

using outcome_list = std::vector<std::optional<result<append_result>>>;

// The puts of one group commit. Each family's puts are written in key order:
// the memtable skiplist then reuses its insert position from one key to the
// next instead of searching from the top for every key.
struct batch_puts {
  using kv = std::pair<std::string, std::string>;
  std::vector<kv> events, index, dedupe;  // events are already ascending (positions)

  void clear() {
    events.clear();
    index.clear();
    dedupe.clear();
  }
  void write_to(rocksdb::WriteBatch& wb, rocksdb::ColumnFamilyHandle* events_cf,
                rocksdb::ColumnFamilyHandle* index_cf, rocksdb::ColumnFamilyHandle* dedupe_cf) {
    auto by_key = [](const kv& a, const kv& b) { return a.first < b.first; };
    std::sort(index.begin(), index.end(), by_key);
    std::sort(dedupe.begin(), dedupe.end(), by_key);
    for (const auto& [k, v] : events) wb.Put(events_cf, k, v);
    for (const auto& [k, v] : index) wb.Put(index_cf, k, v);
    for (const auto& [k, v] : dedupe) wb.Put(dedupe_cf, k, v);
  }
};

}  // namespace

struct embedded_event_log::impl {
  impl(db& d, embedded_options o) : _db(d), _options(std::move(o)) {
    if (!_options.now_ms) _options.now_ms = system_now_ms;
    if (_options.max_batch == 0) _options.max_batch = 1;
  }

  db& _db;
  embedded_options _options;

  batch_queue<pending> _queue{_options.max_pending};
  std::thread _thread;

  // Commit thread only.
  position_t _next_position = 1;
  batch_puts _puts;
  std::unordered_map<std::string, version_t> _versions;

  std::atomic<position_t> _last_position{0};
  struct {
    std::atomic<std::uint64_t> batches{0}, appends{0}, commits{0}, duplicates{0}, conflicts{0},
        rejected_full{0}, write_errors{0};
  } _stats;

  rocksdb::DB* raw() const { return _db.raw(); }
  rocksdb::ColumnFamilyHandle* handle(cf family) const { return _db.handle(family); }

  status recover() {
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(raw()->NewIterator(ro, handle(cf::events)));
    it->SeekToLast();
    if (!it->status().ok()) return rocks_error(it->status(), "recovering last position", cf::events);
    if (it->Valid()) {
      if (it->key().size() != 8) return corrupt("position key", cf::events, 0);
      auto last = keys::get_u64_be(std::string_view(it->key().data(), 8));
      _last_position = last;
      _next_position = last + 1;
    }
    return {};
  }

  // The aggregate's version in the DB (event_index's last key under the prefix).
  result<version_t> stored_version(const std::string& prefix) const {
    rocksdb::ReadOptions ro;
    std::unique_ptr<rocksdb::Iterator> it(raw()->NewIterator(ro, handle(cf::event_index)));
    auto probe = prefix;
    keys::put_u64_be(probe, UINT64_MAX);
    it->SeekForPrev(probe);
    if (!it->status().ok()) return rocks_error(it->status(), "reading current version", cf::event_index);
    if (!it->Valid()) return version_t{0};
    std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 8 || !key.starts_with(prefix)) return version_t{0};
    return keys::get_u64_be(key.substr(prefix.size()));
  }

  result<schemas::commit> load_commit(position_t p) const {
    std::string value;
    auto s = raw()->Get(rocksdb::ReadOptions(), handle(cf::events), keys::position(p), &value);
    if (!s.ok()) return rocks_error(s, "reading commit " + std::to_string(p), cf::events);
    schemas::commit c;
    if (!decode_commit(value, c)) return corrupt("commit", cf::events, p);
    return c;
  }

  // The live dedupe entry of a command id, if any.
  result<std::optional<dedupe_record>> load_dedupe(std::string_view tenant,
                                                   std::string_view command_id) const {
    return dedupe_store(_db).get(tenant, command_id, dedupe_origin::embedded, _options.now_ms());
  }

  result<append_result> duplicate_of(const dedupe_record& d) const {
    auto c = load_commit(d.position);
    if (!c) return std::move(c).err();
    append_result r;
    r.first_version = d.first_version;
    r.last_version = d.last_version;
    r.position = d.position;
    r.duplicate = true;
    r.events = std::move(c->events);
    return r;
  }

  void enqueue(pending p) {
    switch (_queue.push(p)) {
      case push_outcome::queued:
        return;
      case push_outcome::closed:
        return p.done(error::make(
            errc::unavailable, "event log is closed",
            aggregate_ctx(p.request.tenant_id, p.request.aggregate_type, p.request.aggregate_id)));
      case push_outcome::full:
        ++_stats.rejected_full;
        return p.done(error::make(errc::unavailable, "commit queue full",
                                  "max_pending=" + std::to_string(_options.max_pending)));
    }
  }

  void run() {
    std::vector<pending> batch;
    batch.reserve(_options.max_batch);
    while (_queue.take(batch, _options.max_batch)) {
      commit_batch(batch);
      batch.clear();
    }
  }

  // Decides every append of the batch against the versions and command ids
  // known so far (including earlier appends of the same batch), writes the
  // stored ones in one WriteBatch, then completes all of them.
  void commit_batch(std::vector<pending>& batch) {
    _stats.appends += batch.size();
    _puts.clear();
    outcome_list outcomes(batch.size());
    std::unordered_map<std::string, version_t> staged_versions;
    std::unordered_map<std::string, staged_command> staged_commands;
    position_t next = _next_position;
    const std::uint64_t expires = _options.now_ms() + static_cast<std::uint64_t>(_options.dedupe_ttl.count());
    std::uint64_t stored = 0;

    for (std::size_t i = 0; i < batch.size(); ++i) {
      outcomes[i] = decide(batch[i].request, i, outcomes, staged_versions, staged_commands, next, expires);
      if (outcomes[i]->ok() && !(*outcomes[i])->duplicate && (*outcomes[i])->position != 0) ++stored;
    }

    bool write_failed = false;
    error write_error;
    if (stored > 0) {
      rocksdb::WriteBatch wb;
      _puts.write_to(wb, handle(cf::events), handle(cf::event_index), handle(cf::dedupe));
      auto s = _db.write(wb);
      ++_stats.batches;
      if (!s.ok()) {
        write_failed = true;
        write_error = std::move(s).err();
        ++_stats.write_errors;
        ESFLOW_ERROR("storage", "group commit of {} appends failed: {}", stored, write_error.to_string());
      }
    }
    if (!write_failed) {
      _next_position = next;
      _last_position.store(next - 1, std::memory_order_release);
      _stats.commits += stored;
      if (_versions.size() + staged_versions.size() > _options.version_cache_max) _versions.clear();
      for (auto& [key, v] : staged_versions) _versions[key] = v;
    }

    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& out = *outcomes[i];
      // A failed write invalidates every answer that relied on it: all "ok"s
      // become "may or may not be stored" (docs/contract.md 10.6 "Outcomes and retries").
      if (write_failed && out.ok()) out = write_error;
      batch[i].done(std::move(out));
    }
  }

  result<append_result> decide(append_request& r, std::size_t index, const outcome_list& outcomes,
                               std::unordered_map<std::string, version_t>& staged_versions,
                               std::unordered_map<std::string, staged_command>& staged_commands,
                               position_t& next, std::uint64_t expires) {
    if (r.command_id.empty()) {
      return error::make(errc::invalid_command, "command id is empty",
                         aggregate_ctx(r.tenant_id, r.aggregate_type, r.aggregate_id));
    }
    auto dkey = keys::dedupe(r.tenant_id, r.command_id);
    auto reused = [&] {
      return error::make(errc::command_id_reused,
                         "command id " + r.command_id + " was already used with another aggregate or payload",
                         aggregate_ctx(r.tenant_id, r.aggregate_type, r.aggregate_id));
    };
    if (auto it = staged_commands.find(dkey); it != staged_commands.end()) {
      if (it->second.hash != r.request_hash) return reused();
      ++_stats.duplicates;
      auto copy = outcomes[it->second.index]->value();
      copy.duplicate = true;
      return copy;
    }
    auto known = load_dedupe(r.tenant_id, r.command_id);
    if (!known) return std::move(known).err();
    if (*known) {
      if ((*known)->request_hash != r.request_hash) return reused();
      ++_stats.duplicates;
      return duplicate_of(**known);
    }

    auto akey = keys::aggregate(r.tenant_id, r.aggregate_type, r.aggregate_id);
    version_t current = 0;
    if (auto it = staged_versions.find(akey); it != staged_versions.end()) {
      current = it->second;
    } else if (auto jt = _versions.find(akey); jt != _versions.end()) {
      current = jt->second;
    } else {
      auto v = stored_version(akey);
      if (!v) return std::move(v).err();
      current = *v;
      _versions.emplace(akey, current);
    }
    if (r.expected_version != current) {
      ++_stats.conflicts;
      return error::make(
          errc::version_conflict,
          "expected version " + std::to_string(r.expected_version) + ", actual " + std::to_string(current),
          aggregate_ctx(r.tenant_id, r.aggregate_type, r.aggregate_id));
    }

    append_result out;
    if (r.events.empty()) {
      out.first_version = out.last_version = current;
      return out;
    }
    out.first_version = current + 1;
    out.last_version = current + r.events.size();
    out.position = next++;
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      auto& e = r.events[i];
      e.tenant_id = r.tenant_id;
      e.aggregate_type = r.aggregate_type;
      e.aggregate_id = r.aggregate_id;
      e.command_id = r.command_id;
      e.version = out.first_version + i;
    }
    auto pkey = keys::position(out.position);
    auto ikey = akey;
    keys::put_u64_be(ikey, out.last_version);
    _puts.index.emplace_back(std::move(ikey), pkey);
    _puts.events.emplace_back(std::move(pkey), encode_commit(r, out.first_version));
    _puts.dedupe.emplace_back(
        dkey, dedupe_store::encode(dedupe_origin::embedded, {expires, r.request_hash, out.position,
                                                             out.first_version, out.last_version}));
    staged_versions[std::move(akey)] = out.last_version;
    out.events = std::move(r.events);
    staged_commands.emplace(std::move(dkey), staged_command{r.request_hash, index});
    return out;
  }
};

embedded_event_log::embedded_event_log(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

embedded_event_log::~embedded_event_log() { esflow::ignore(close()); }

result<std::unique_ptr<embedded_event_log>> embedded_event_log::open(db& database, embedded_options options) {
  if (database.raw() == nullptr) {
    return error::make(errc::unavailable, "database is closed", "path=" + database.options().path);
  }
  auto p = std::make_unique<impl>(database, std::move(options));
  if (auto s = p->recover(); !s.ok()) return std::move(s).err();
  auto* raw = p.get();
  std::unique_ptr<embedded_event_log> log(new embedded_event_log(std::move(p)));
  raw->_thread = start_named_thread("esflow-commit", "storage", [raw] { raw->run(); });
  ESFLOW_INFO("storage", "embedded event log open at position {}", raw->_last_position.load());
  return log;
}

void embedded_event_log::append(append_request request, append_callback done) {
  _impl->enqueue(pending{std::move(request), std::move(done)});
}

result<std::vector<schemas::event>> embedded_event_log::read(std::string_view tenant, std::string_view type,
                                                             std::string_view id, version_t after,
                                                             std::size_t limit) {
  std::vector<schemas::event> out;
  if (limit == 0 || after == UINT64_MAX) return out;
  auto prefix = keys::aggregate(tenant, type, id);
  auto upper = keys::prefix_successor(prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(_impl->raw()->NewIterator(ro, _impl->handle(cf::event_index)));
  // Index keys carry a commit's last version: the first key >= after+1 is the
  // commit that holds version after+1.
  auto start = prefix;
  keys::put_u64_be(start, after + 1);
  for (it->Seek(start); it->Valid() && out.size() < limit; it->Next()) {
    if (it->value().size() != 8) return corrupt("index value", cf::event_index, 0);
    auto p = keys::get_u64_be(std::string_view(it->value().data(), 8));
    auto c = _impl->load_commit(p);
    if (!c) return std::move(c).err();
    for (auto& e : c->events) {
      if (e.version <= after) continue;
      if (out.size() == limit) break;
      out.push_back(std::move(e));
    }
  }
  if (!it->status().ok()) {
    return rocks_error(it->status(), "reading aggregate", cf::event_index, aggregate_ctx(tenant, type, id));
  }
  return out;
}

result<version_t> embedded_event_log::current_version(std::string_view tenant, std::string_view type,
                                                      std::string_view id) {
  return _impl->stored_version(keys::aggregate(tenant, type, id));
}

result<std::optional<append_result>> embedded_event_log::find_command(std::string_view tenant,
                                                                      std::string_view command_id) {
  auto known = _impl->load_dedupe(tenant, command_id);
  if (!known) return std::move(known).err();
  if (!*known) return std::optional<append_result>{};
  auto r = _impl->duplicate_of(**known);
  if (!r) return std::move(r).err();
  return std::optional<append_result>{std::move(r).value()};
}

result<std::vector<positioned_commit>> embedded_event_log::read_from(position_t after, std::size_t max) {
  std::vector<positioned_commit> out;
  if (max == 0 || after == UINT64_MAX) return out;
  std::unique_ptr<rocksdb::Iterator> it(
      _impl->raw()->NewIterator(rocksdb::ReadOptions(), _impl->handle(cf::events)));
  for (it->Seek(keys::position(after + 1)); it->Valid() && out.size() < max; it->Next()) {
    if (it->key().size() != 8) return corrupt("position key", cf::events, after);
    positioned_commit pc;
    pc.position = keys::get_u64_be(std::string_view(it->key().data(), 8));
    if (!decode_commit(std::string_view(it->value().data(), it->value().size()), pc.commit)) {
      return corrupt("commit", cf::events, pc.position);
    }
    out.push_back(std::move(pc));
  }
  if (!it->status().ok()) return rocks_error(it->status(), "reading log", cf::events);
  return out;
}

result<position_t> embedded_event_log::last_position() {
  return _impl->_last_position.load(std::memory_order_acquire);
}

status embedded_event_log::close() {
  _impl->_queue.close();
  return join_named_thread(_impl->_thread, "an append completion");
}

commit_stats embedded_event_log::stats() const {
  const auto& s = _impl->_stats;
  commit_stats out;
  out.batches = s.batches.load();
  out.appends = s.appends.load();
  out.commits = s.commits.load();
  out.duplicates = s.duplicates.load();
  out.conflicts = s.conflicts.load();
  out.rejected_full = s.rejected_full.load();
  out.write_errors = s.write_errors.load();
  return out;
}

}  // namespace esflow::storage
