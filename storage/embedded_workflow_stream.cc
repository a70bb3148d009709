#include "storage/embedded_workflow_stream.h"

#include "common/log.h"
#include "common/named_thread.h"
#include "storage/batch_queue.h"
#include "storage/codec.h"
#include "storage/keys.h"
#include "storage/recent_msg_ids.h"
#include "storage/write_set.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>
#include <unordered_map>

namespace esflow::storage {
namespace {

constexpr std::uint8_t message_format = 1;
constexpr std::string_view message_tag = "m";
// (stream, "i", position) -> expiry, msg id: appended in publish order, so
// its inserts land next to the last one; read back only at open.
constexpr std::string_view msg_id_tag = "i";
// (stream, "d", msg id) -> expiry, position, publish time: what versions
// before the "i" entries wrote. Read at open until they expire; never written.
constexpr std::string_view legacy_msg_id_tag = "d";

std::uint64_t system_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

error rocks_error(const rocksdb::Status& s, std::string_view what, const std::string& stream) {
  return error::make(errc::unavailable, std::string(what) + ": " + s.ToString(),
                     "cf=streams stream=" + stream);
}

error corrupt(std::string_view what, const std::string& stream, std::uint64_t where) {
  return error::make(errc::internal, "corrupt " + std::string(what),
                     "cf=streams stream=" + stream + " at=" + std::to_string(where));
}

std::string encode_message(const publish_request& r) {
  std::string out;
  std::size_t size = 16 + r.subject.size() + r.msg_id.size() + r.body.size();
  for (const auto& [k, v] : r.headers) size += 4 + k.size() + v.size();
  out.reserve(size);
  codec::writer w(out);
  w.u8(message_format);
  w.str(r.subject);
  w.str(r.msg_id);
  w.varint(r.headers.size());
  for (const auto& [k, v] : r.headers) {
    w.str(k);
    w.str(v);
  }
  w.str(r.body);
  return out;
}

bool decode_message(std::string_view value, stream_message& m) {
  codec::reader r(value);
  if (r.u8() != message_format) return false;
  m.subject = r.str();
  m.msg_id = r.str();
  auto count = r.varint();
  if (!r.ok() || count > value.size()) return false;
  m.headers.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string k(r.str());
    m.headers.emplace_back(std::move(k), std::string(r.str()));
  }
  m.body = r.str();
  return r.ok() && r.done();
}

// A msg-id entry's value: expiry first (the compaction filter reads it), then the msg id.
std::string encode_msg_id_entry(std::uint64_t expires_ms, std::string_view msg_id) {
  std::string out;
  out.reserve(8 + msg_id.size());
  keys::put_u64_be(out, expires_ms);
  out += msg_id;
  return out;
}

struct pending {
  publish_request request;
  workflow_stream::publish_callback done;
};

}  // namespace

struct embedded_workflow_stream::impl {
  impl(db& d, std::string n, embedded_stream_options o)
      : _db(d), _name(std::move(n)), _options(std::move(o)) {
    if (!_options.now_ms) _options.now_ms = system_now_ms;
    if (_options.max_batch == 0) _options.max_batch = 1;
    _message_prefix = keys::components({_name, message_tag});
    _msg_id_prefix = keys::components({_name, msg_id_tag});
  }

  db& _db;
  std::string _name;
  embedded_stream_options _options;
  std::string _message_prefix;                // (stream, "m")
  std::string _msg_id_prefix;                 // (stream, "i")
  recent_msg_ids _ids{_options.max_msg_ids};  // filled at open (remember_ids), then the writer's only
  std::uint64_t _warn_at_forgotten = 1;

  batch_queue<pending> _queue{_options.max_pending};
  std::thread _thread;

  position_t _next_position = 1;  // writer thread only (after recover())
  std::atomic<position_t> _last_position{0};

  rocksdb::DB* raw() const { return _db.raw(); }
  error closed() const { return error::make(errc::unavailable, "database is closed", "stream=" + _name); }
  rocksdb::ColumnFamilyHandle* handle() const { return _db.handle(cf::streams); }

  std::string message_key(position_t p) const {
    auto k = _message_prefix;
    keys::put_u64_be(k, p);
    return k;
  }
  std::string msg_id_key(position_t p) const {
    auto k = _msg_id_prefix;
    keys::put_u64_be(k, p);
    return k;
  }

  status recover() {
    std::unique_ptr<rocksdb::Iterator> it(raw()->NewIterator(rocksdb::ReadOptions(), handle()));
    it->SeekForPrev(message_key(UINT64_MAX));
    if (!it->status().ok()) return rocks_error(it->status(), "recovering last position", _name);
    if (!it->Valid()) return {};
    std::string_view key(it->key().data(), it->key().size());
    if (!key.starts_with(_message_prefix)) return {};
    if (key.size() != _message_prefix.size() + 8) return corrupt("message key", _name, 0);
    auto last = keys::get_u64_be(key.substr(_message_prefix.size()));
    _last_position = last;
    _next_position = last + 1;
    return {};
  }

  // The msg ids still in their window, back into memory: the legacy entries,
  // then the "i" entries from the newest back, to the bound or to one that
  // expired a whole window ago. Expired ones on the way are skipped, not an
  // end: a wall clock stepped back makes a later message expire earlier.
  status remember_ids() {
    const auto now = _options.now_ms();
    const auto window_ms = static_cast<std::uint64_t>(_options.dedupe_window.count());
    std::vector<recent_msg_ids::entry> found;
    const auto legacy_prefix = keys::components({_name, legacy_msg_id_tag});
    std::unique_ptr<rocksdb::Iterator> it(raw()->NewIterator(rocksdb::ReadOptions(), handle()));
    for (it->Seek(legacy_prefix); it->Valid() && it->key().starts_with(legacy_prefix); it->Next()) {
      std::string_view v(it->value().data(), it->value().size());
      if (v.size() != 24) return corrupt("legacy msg id entry", _name, 0);
      const auto expires = keys::get_u64_be(v.substr(0, 8));
      if (expires < now) continue;
      std::string_view key(it->key().data(), it->key().size());
      std::size_t pos = 0;
      std::string_view stream, tag, msg_id;
      if (!keys::get_str(key, pos, stream) || !keys::get_str(key, pos, tag) ||
          !keys::get_str(key, pos, msg_id))
        return corrupt("legacy msg id key", _name, 0);
      found.push_back({recent_msg_ids::hash_of(msg_id), keys::get_u64_be(v.substr(8, 8)), expires});
    }
    if (!it->status().ok()) return rocks_error(it->status(), "reading legacy msg ids", _name);
    const std::size_t legacy = found.size();
    for (it->SeekForPrev(msg_id_key(UINT64_MAX));
         it->Valid() && it->key().starts_with(_msg_id_prefix) && found.size() - legacy < _ids.capacity();
         it->Prev()) {
      std::string_view key(it->key().data(), it->key().size());
      std::string_view v(it->value().data(), it->value().size());
      if (key.size() != _msg_id_prefix.size() + 8 || v.size() < 8) return corrupt("msg id entry", _name, 0);
      const auto expires = keys::get_u64_be(v.substr(0, 8));
      if (expires + window_ms < now) break;
      if (expires < now) continue;
      found.push_back({recent_msg_ids::hash_of(v.substr(8)),
                       keys::get_u64_be(key.substr(_msg_id_prefix.size())), expires});
    }
    if (!it->status().ok()) return rocks_error(it->status(), "reading msg ids", _name);
    std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
      return a.expires_ms != b.expires_ms ? a.expires_ms < b.expires_ms : a.position < b.position;
    });
    for (const auto& e : found) _ids.add(e.hash, e.position, e.expires_ms);
    return {};
  }

  // The position of a msg id still remembered at now_ms: a candidate of its
  // hash whose stored message carries this very id (ids may share a hash).
  result<std::optional<position_t>> known(std::string_view msg_id, std::uint64_t now_ms) const {
    for (const auto& c : _ids.candidates(recent_msg_ids::hash_of(msg_id))) {
      if (c.expires_ms < now_ms) continue;
      if (raw() == nullptr) return closed();
      std::string value;
      auto s = raw()->Get(rocksdb::ReadOptions(), handle(), message_key(c.position), &value);
      if (s.IsNotFound()) continue;  // the message itself is gone (dropped by hand): nothing to answer
      if (!s.ok()) return rocks_error(s, "reading a message for its msg id", _name);
      stream_message m;
      if (!decode_message(value, m)) return corrupt("message", _name, c.position);
      if (m.msg_id == msg_id) return std::optional<position_t>{c.position};
    }
    return std::optional<position_t>{};
  }

  void enqueue(pending p) {
    switch (_queue.push(p)) {
      case push_outcome::queued:
        return;
      case push_outcome::closed:
        return p.done(error::make(errc::unavailable, "workflow stream is closed", "stream=" + _name));
      case push_outcome::full:
        return p.done(
            error::make(errc::unavailable, "stream queue full",
                        "stream=" + _name + " max_pending=" + std::to_string(_options.max_pending)));
    }
  }

  void run() {
    std::vector<pending> batch;
    batch.reserve(std::min<std::size_t>(_options.max_batch, 1024));
    while (_queue.take(batch, _options.max_batch)) {
      write_batch(batch);
      batch.clear();
    }
  }

  // Answers every publish of the batch (duplicates from this batch or the
  // remembered ids), writes the new messages in one write set, then
  // completes all of them in order.
  void write_batch(std::vector<pending>& batch) {
    const std::uint64_t now = _options.now_ms();
    const std::uint64_t expires = now + static_cast<std::uint64_t>(_options.dedupe_window.count());
    std::vector<result<publish_ack>> outcomes;
    outcomes.reserve(batch.size());
    std::unordered_map<std::string_view, position_t> staged;  // msg id -> position, this batch
    _ids.expire(now);
    // Written in key order per family: the messages, then their msg-id entries (both by
    // consecutive positions), then the requests' own writes. The memtable's skiplist reuses its
    // last insert's position for a key right after it; alternating message and msg id made
    // every insert search from the top (docs/performance.md "Memtable inserts").
    write_set ws(_db);
    std::vector<std::pair<std::string, std::string>> ids;
    std::vector<std::pair<std::size_t, const write_set*>> withs;  // outcome index, the publish's own writes
    position_t next = _next_position;
    std::size_t stored = 0;

    for (auto& p : batch) {
      auto& r = p.request;
      if (auto s = check_publish(_name, r); !s.ok()) {
        outcomes.emplace_back(std::move(s).err());
        continue;
      }
      publish_ack ack;
      if (auto it = staged.find(r.msg_id); it != staged.end()) {
        ack = {it->second, true};
      } else {
        auto k = known(r.msg_id, now);
        if (!k.ok()) {
          outcomes.emplace_back(std::move(k).err());
          continue;
        }
        if (k->has_value()) {
          ack = {**k, true};
        } else {
          ack = {next++, false};
          ws.put(cf::streams, message_key(ack.position), encode_message(r));
          ids.emplace_back(msg_id_key(ack.position), encode_msg_id_entry(expires, r.msg_id));
          staged.emplace(r.msg_id, ack.position);
          ++stored;
        }
      }
      // The request's own writes go with the message (or with its duplicate's answer).
      if (r.with && !r.with->empty()) withs.emplace_back(outcomes.size(), r.with.get());
      outcomes.emplace_back(ack);
    }
    for (const auto& [key, entry] : ids) ws.put(cf::streams, key, entry);
    for (const auto& [index, own] : withs) {
      if (!ws.absorb(*own)) continue;
      outcomes[index].value().wrote_with = true;
      ++stored;
    }

    if (stored > 0) {
      status s = ws.met_closed_db() ? status(closed()) : _db.write(ws.batch());
      if (s.ok()) {
        _next_position = next;
        _last_position.store(next - 1, std::memory_order_release);
        // The new ids (all of one expiry) enter memory only now that they are stored.
        for (const auto& [msg_id, position] : staged)
          _ids.add(recent_msg_ids::hash_of(msg_id), position, expires);
        warn_if_forgotten_early();
      } else {
        // A failed write invalidates every answer that relied on it (docs/contract.md
        // 10.6): the publishes may or may not be stored; publish again with the same id.
        ESFLOW_ERROR("storage", "stream {}: group write of {} publishes failed: {}", _name, stored,
                     s.err().to_string());
        for (auto& o : outcomes)
          if (o.ok()) o = s.err();
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(outcomes[i]));
  }

  // At the first id forgotten before its window ended (more than max_msg_ids publishes per
  // window), then once per 10,000 more: a re-publish of such an id is stored again.
  void warn_if_forgotten_early() {
    const auto forgotten = _ids.forgotten_early();
    if (forgotten < _warn_at_forgotten) return;
    _warn_at_forgotten = forgotten + 10'000;
    ESFLOW_WARN("storage",
                "stream {}: {} msg ids forgotten before their dedupe window ended (max_msg_ids {}: "
                "publishes outran the bound)",
                _name, forgotten, _ids.capacity());
  }
};

embedded_workflow_stream::embedded_workflow_stream(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

embedded_workflow_stream::~embedded_workflow_stream() { esflow::ignore(close()); }

result<std::unique_ptr<embedded_workflow_stream>> embedded_workflow_stream::open(
    db& database, std::string name, embedded_stream_options options) {
  if (workflow_stream_subjects(name).empty()) {
    return error::make(errc::invalid_config, "unknown workflow stream '" + name + "'",
                       "expected WORKFLOW_COMMANDS or WORKFLOW_EVENTS");
  }
  if (database.raw() == nullptr) {
    return error::make(errc::unavailable, "database is closed", "path=" + database.options().path);
  }
  auto p = std::make_unique<impl>(database, std::move(name), std::move(options));
  if (auto s = p->recover(); !s.ok()) return std::move(s).err();
  if (auto s = p->remember_ids(); !s.ok()) return std::move(s).err();
  auto* raw = p.get();
  std::unique_ptr<embedded_workflow_stream> stream(new embedded_workflow_stream(std::move(p)));
  raw->_thread = start_named_thread("esflow-stream", "storage", [raw] { raw->run(); });
  ESFLOW_INFO("storage", "embedded workflow stream {} open at position {}", raw->_name,
              raw->_last_position.load());
  return stream;
}

const std::string& embedded_workflow_stream::name() const { return _impl->_name; }

void embedded_workflow_stream::publish(publish_request request, publish_callback done) {
  _impl->enqueue(pending{std::move(request), std::move(done)});
}

result<std::vector<stream_message>> embedded_workflow_stream::read_from(position_t after, std::size_t max) {
  std::vector<stream_message> out;
  if (max == 0 || after == UINT64_MAX) return out;
  if (_impl->raw() == nullptr) return _impl->closed();
  // Only what the writer thread completed: a message written with the batch
  // that is still completing is visible from then on anyway.
  const position_t last = _impl->_last_position.load(std::memory_order_acquire);
  auto upper = keys::prefix_successor(_impl->_message_prefix);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  if (!upper.empty()) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(_impl->raw()->NewIterator(ro, _impl->handle()));
  const auto& prefix = _impl->_message_prefix;
  for (it->Seek(_impl->message_key(after + 1)); it->Valid() && out.size() < max; it->Next()) {
    std::string_view key(it->key().data(), it->key().size());
    if (key.size() != prefix.size() + 8) return corrupt("message key", _impl->_name, after);
    stream_message m;
    m.position = keys::get_u64_be(key.substr(prefix.size()));
    if (m.position > last) break;
    if (!decode_message(std::string_view(it->value().data(), it->value().size()), m)) {
      return corrupt("message", _impl->_name, m.position);
    }
    out.push_back(std::move(m));
  }
  if (!it->status().ok()) return rocks_error(it->status(), "reading stream", _impl->_name);
  return out;
}

result<position_t> embedded_workflow_stream::last_position() {
  return _impl->_last_position.load(std::memory_order_acquire);
}

status embedded_workflow_stream::close() {
  _impl->_queue.close();
  return join_named_thread(_impl->_thread, "a publish completion");
}

}  // namespace esflow::storage
