#include "placement/kv_placement.h"

#include "common/log.h"
#include "common/named_thread.h"
#include "placement/placement_file.h"
#include "schemas/ids.h"

#include <chrono>
#include <string>
#include <thread>

namespace esflow::placement {
namespace {

constexpr const char* k_module = "placement";

error bad_id(std::string_view what, std::string_view id) {
  return error::make(errc::invalid_config,
                     std::string(what) + " '" + std::string(id) + "' is not [A-Za-z0-9_-]{1,64}",
                     "placement=kv");
}

}  // namespace

// ---- map_feed ------------------------------------------------------------------

map_ptr map_feed::current() const {
  std::lock_guard lk(_mu);
  return _current;
}

void map_feed::publish(map_ptr now) {
  {
    std::lock_guard lk(_mu);
    _current = now;
  }
  std::lock_guard lk(_listeners_mu);
  for (auto& [_, fn] : _listeners) fn(now);
}

std::uint64_t map_feed::add_listener(map_listener fn) {
  std::lock_guard lk(_listeners_mu);
  auto id = _next++;
  _listeners.emplace(id, std::move(fn));
  return id;
}

void map_feed::remove_listener(std::uint64_t id) {
  std::lock_guard lk(_listeners_mu);
  _listeners.erase(id);
}

// ---- kv_placement ------------------------------------------------------------------

result<std::unique_ptr<kv_placement>> kv_placement::open(nats::nats_connection& nc, kv_options options) {
  if (options.vnodes < 1 || options.vnodes > k_max_vnodes)
    return error::make(errc::invalid_config, "vnodes " + std::to_string(options.vnodes) + " is outside [1, " +
                                                 std::to_string(k_max_vnodes) + "]");
  if (auto st = nc.check(); !st.ok()) return std::move(st).err();
  std::unique_ptr<kv_placement> self(new kv_placement(nc, std::move(options)));
  const auto ctx = "bucket=" + self->_options.bucket;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = self->_options.op_timeout.count();
  auto js = nc.jetstream(jo);
  if (!js.ok()) return std::move(js).err();
  self->_js = js.value();
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = self->_options.bucket.c_str();
  cfg.Description = "esflow tenant placement (docs/contract.md)";
  // History 1: the watcher needs the latest value only; CAS works on the revision.
  cfg.History = 1;
  cfg.StorageType = js_FileStorage;
  cfg.Replicas = self->_options.replicas < 1 ? 1 : self->_options.replicas;
  // Nodes starting together race to create the bucket, and the server may
  // refuse all creates but the first, or answer an error while it settles: the
  // bucket is looked up (and created) again until op_timeout has passed. A
  // node that gave up would run alone and take every tenant.
  const auto deadline = std::chrono::steady_clock::now() + self->_options.op_timeout;
  natsStatus s = NATS_OK;
  for (int attempt = 0; attempt < 50; ++attempt) {
    s = js_KeyValue(&self->_kv, self->_js, self->_options.bucket.c_str());
    if (s == NATS_NOT_FOUND) {
      s = js_CreateKeyValue(&self->_kv, self->_js, &cfg);
      if (s == NATS_OK)
        ESFLOW_INFO(k_module, "created KV bucket {} (replicas {})", self->_options.bucket, cfg.Replicas);
    }
    if (s == NATS_OK || std::chrono::steady_clock::now() >= deadline) break;
    self->_kv = nullptr;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (s != NATS_OK) {
    self->_kv = nullptr;
    return nats::nats_error(s, "opening KV bucket " + self->_options.bucket, ctx);
  }
  return self;
}

kv_placement::~kv_placement() {
  stop();
  if (_kv != nullptr) kvStore_Destroy(_kv);
  if (_js != nullptr) jsCtx_Destroy(_js);
}

status kv_placement::register_node(node_registration registration) {
  if (!is_valid_placement_id(registration.node)) return bad_id("node id", registration.node);
  if (registration.updated.empty()) registration.updated = schemas::now_timestamp();
  const auto key = node_key(registration.node);
  const auto value = registration.json().dump();
  auto s = kvStore_PutString(nullptr, _kv, key.c_str(), value.c_str());
  if (s != NATS_OK) return nats::nats_error(s, "putting " + key, "bucket=" + _options.bucket);
  return {};
}

status kv_placement::remove_node(std::string_view node) {
  if (!is_valid_placement_id(node)) return bad_id("node id", node);
  const auto key = node_key(node);
  auto s = kvStore_Delete(_kv, key.c_str());
  if (s != NATS_OK) return nats::nats_error(s, "deleting " + key, "bucket=" + _options.bucket);
  return {};
}

status kv_placement::set_tenant(std::string_view tenant, std::string_view node_or_empty) {
  if (!is_valid_placement_id(tenant_token(tenant))) return bad_id("tenant id", tenant);
  if (!node_or_empty.empty() && !is_valid_placement_id(node_or_empty))
    return bad_id("node id", node_or_empty);
  const auto key = tenant_key(tenant);
  const std::string value(node_or_empty);
  auto s = kvStore_PutString(nullptr, _kv, key.c_str(), value.c_str());
  if (s != NATS_OK) return nats::nats_error(s, "putting " + key, "bucket=" + _options.bucket);
  return {};
}

result<std::uint64_t> kv_placement::tenant_revision(std::string_view tenant) {
  if (!is_valid_placement_id(tenant_token(tenant))) return bad_id("tenant id", tenant);
  const auto key = tenant_key(tenant);
  kvEntry* e = nullptr;
  auto s = kvStore_Get(&e, _kv, key.c_str());
  if (s == NATS_NOT_FOUND) return std::uint64_t{0};  // never set, or deleted
  if (s != NATS_OK) return nats::nats_error(s, "reading " + key, "bucket=" + _options.bucket);
  const auto rev = kvEntry_Revision(e);
  kvEntry_Destroy(e);
  return rev;
}

result<std::uint64_t> kv_placement::move_tenant(std::string_view tenant, std::string_view to,
                                                std::uint64_t expected_revision) {
  if (!is_valid_placement_id(tenant_token(tenant))) return bad_id("tenant id", tenant);
  if (!to.empty() && !is_valid_placement_id(to)) return bad_id("node id", to);
  const auto key = tenant_key(tenant);
  const std::string value(to);
  std::uint64_t rev = 0;
  // kvStore_Update with last 0 would not check anything (nats.c sends no
  // expected-sequence header for 0): "no entry yet" is kvStore_Create.
  auto s = expected_revision == 0
               ? kvStore_CreateString(&rev, _kv, key.c_str(), value.c_str())
               : kvStore_UpdateString(&rev, _kv, key.c_str(), value.c_str(), expected_revision);
  if (s == NATS_OK) {
    ESFLOW_INFO(k_module, "tenant {} placed on '{}' (revision {} -> {})", tenant_token(tenant), value,
                expected_revision, rev);
    return rev;
  }
  // nats.c 3.4.1 gives no distinct status for "wrong last sequence" through
  // kvStore_Update; the entry's revision tells a lost race from an outage.
  auto now = tenant_revision(tenant);
  if (now.ok() && *now != expected_revision) {
    return error::make(errc::version_conflict,
                       "tenant " + std::string(tenant_token(tenant)) + ": placement revision is " +
                           std::to_string(*now) + ", expected " + std::to_string(expected_revision),
                       "bucket=" + _options.bucket + " key=" + key);
  }
  return nats::nats_error(s, "updating " + key, "bucket=" + _options.bucket);
}

status kv_placement::start_watch() {
  std::lock_guard lk(_mu);
  if (_started) return {};
  _started = true;
  _stop = false;
  _thread = start_named_thread("placement-kv", k_module, [this] { watch_loop(); });
  return {};
}

status kv_placement::wait_initial(std::chrono::milliseconds within) {
  std::unique_lock lk(_mu);
  if (_cv.wait_for(lk, within, [this] { return _initial_done; })) return {};
  return error::make(errc::unavailable,
                     "KV bucket " + _options.bucket + ": no initial placement within " +
                         std::to_string(within.count()) + " ms",
                     "bucket=" + _options.bucket);
}

void kv_placement::stop() {
  {
    std::lock_guard lk(_mu);
    _stop = true;
    // No kvWatcher_Stop here: nats.c 3.4.1 leaks the message a kvWatcher_Next
    // in progress has just taken when the watcher is stopped under it. The
    // loop sees _stop within one watch_poll instead.
  }
  _cv.notify_all();
  ignore(join_named_thread(_thread, "a placement listener"));
}

void kv_placement::pause(std::chrono::milliseconds d) {
  std::unique_lock lk(_mu);
  _cv.wait_for(lk, d, [this] { return _stop.load(); });
}

void kv_placement::apply_and_publish(const placement_map::node_table& nodes,
                                     const placement_map::tenant_table& tenants) {
  auto m = placement_map::make(nodes, tenants, _options.vnodes, _options.ring_kind);
  if (!m.ok()) {
    // Entries are checked one by one as they arrive, so this is a bug, not input.
    ESFLOW_ERROR(k_module, "placement not applied: {}", m.err().to_string());
    return;
  }
  auto now = std::make_shared<const placement_map>(std::move(m).value());
  if (!_options.file.empty()) {
    if (auto st = save_placement_file(_options.file, *now); !st.ok())
      ESFLOW_WARN(k_module, "placement file not saved: {}", st.err().to_string());
  }
  _feed.publish(std::move(now));
}

void kv_placement::watch_loop() {
  const auto poll = std::max<std::int64_t>(1, _options.watch_poll.count());
  bool warned = false;
  while (!_stop) {
    kvWatcher* w = nullptr;
    kvWatchOptions wo;
    kvWatchOptions_Init(&wo);  // deletes included: a deleted key leaves the map
    auto s = kvStore_WatchAll(&w, _kv, &wo);
    if (s != NATS_OK) {
      if (!warned)
        ESFLOW_WARN(k_module, "watching KV bucket {}: {} (retrying)", _options.bucket, natsStatus_GetText(s));
      warned = true;
      pause(std::chrono::milliseconds(poll * 5));
      continue;
    }
    if (_stop) {
      kvWatcher_Destroy(w);
      break;
    }
    // A new watcher delivers every key again: start from nothing.
    placement_map::node_table nodes;
    placement_map::tenant_table tenants;
    bool initial = true;
    while (!_stop) {
      kvEntry* e = nullptr;
      s = kvWatcher_Next(&e, w, poll);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (!_stop)
          ESFLOW_WARN(k_module, "KV watch on {} ended: {} (re-watching)", _options.bucket,
                      natsStatus_GetText(s));
        break;
      }
      warned = false;
      if (e == nullptr) {  // nats.c's end-of-initial-values marker
        initial = false;
        apply_and_publish(nodes, tenants);
        {
          std::lock_guard lk(_mu);
          _initial_done = true;
        }
        _cv.notify_all();
        continue;
      }
      const std::string key = kvEntry_Key(e);
      const auto op = kvEntry_Operation(e);
      const auto* data = static_cast<const char*>(kvEntry_Value(e));
      const std::string value =
          data == nullptr ? std::string() : std::string(data, static_cast<std::size_t>(kvEntry_ValueLen(e)));
      kvEntry_Destroy(e);
      const bool removed = op == kvOp_Delete || op == kvOp_Purge;
      bool changed = false;
      if (key.starts_with(k_nodes_prefix)) {
        auto id = key.substr(k_nodes_prefix.size());
        if (removed) {
          changed = nodes.erase(id) > 0;
        } else if (auto reg = node_registration::parse(value, key); !reg.ok()) {
          ESFLOW_WARN(k_module, "ignoring {}: {}", key, reg.err().to_string());
        } else if (reg->node != id) {
          ESFLOW_WARN(k_module, "ignoring {}: the registration names node '{}'", key, reg->node);
        } else {
          nodes[id] = std::move(reg).value();
          changed = true;
        }
      } else if (key.starts_with(k_tenants_prefix)) {
        auto t = key.substr(k_tenants_prefix.size());
        if (removed) {
          changed = tenants.erase(t) > 0;
        } else if (!is_valid_placement_id(t) || (!value.empty() && !is_valid_placement_id(value))) {
          ESFLOW_WARN(k_module, "ignoring {} = '{}': not [A-Za-z0-9_-]{{1,64}}", key, value);
        } else {
          tenants[t] = value;
          changed = true;
        }
      }  // other keys belong to no one we know: left alone
      if (changed && !initial) apply_and_publish(nodes, tenants);
    }
    kvWatcher_Destroy(w);
  }
}

}  // namespace esflow::placement
