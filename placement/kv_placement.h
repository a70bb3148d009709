#pragma once
// Tenant placement in the NATS KV bucket TENANT_PLACEMENT (docs/contract.md
// "Gateway (the edge) and tenant placement"): `nodes.<id>` -> a node's
// registration JSON, `tenants.<tenant>` -> a node id or "" (the ring
// decides). One watcher thread applies every change (the initial values,
// then live updates) into a new placement_map and hands it to listeners.
//
// NOTE: threads: one of ours, "placement-kv", runs the watch loop
//       (kvWatcher_Next with a bounded timeout, so stop() returns within
//       about one watch_poll). Listeners run on it, one at a time, in change
//       order; they must not block (swap a pointer, post work elsewhere).
// NOTE: every other member is thread-safe. current() is a mutex-guarded
//       shared_ptr copy: take it once per request and read that snapshot.
// NOTE: lifetime: the nats_connection must outlive this object; the
//       destructor stops the watcher and destroys the KV handles.
// NOTE: with options.file set, every applied map is saved there (atomic
//       replace), so the fallback file is the last known placement.
#include "common/result.h"
#include "placement/placement_map.h"
#include "transport/nats/nats_connection.h"

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace esflow::placement {

inline constexpr std::string_view k_bucket = "TENANT_PLACEMENT";

using map_ptr = std::shared_ptr<const placement_map>;
using map_listener = std::function<void(map_ptr now)>;

// The latest map and the listeners told of each new one. Shared by
// kv_placement (the watcher publishes) and placement_service (file mode).
//
// NOTE: thread-safe. publish() calls the listeners under the listener lock,
//       so remove_listener() returns only once no call of it is running;
//       a listener must not add or remove listeners.
class map_feed {
 public:
  map_feed() : _current(std::make_shared<const placement_map>()) {}
  map_ptr current() const;
  void publish(map_ptr now);
  std::uint64_t add_listener(map_listener fn);
  void remove_listener(std::uint64_t id);

 private:
  mutable std::mutex _mu;
  map_ptr _current;  // guarded by _mu
  std::mutex _listeners_mu;
  std::map<std::uint64_t, map_listener> _listeners;  // guarded by _listeners_mu
  std::uint64_t _next = 1;                           // guarded by _listeners_mu
};

struct kv_options {
  std::string bucket = std::string(k_bucket);
  // Applies only when the bucket is created (as the streams' replicas do).
  int replicas = 1;
  int vnodes = k_default_vnodes;
  // The ring is over the nodes registered with this kind.
  std::string ring_kind = std::string(k_aggregate_kind);
  // Each KV call's bound (the JetStream context's Wait).
  std::chrono::milliseconds op_timeout{2000};
  // kvWatcher_Next's timeout: how long stop() may wait for the watcher.
  std::chrono::milliseconds watch_poll{100};
  // Where each applied map is saved; empty: nowhere.
  std::filesystem::path file;
};

class kv_placement {
 public:
  // Binds the bucket, creating it when missing (history 1, file storage,
  // options.replicas). errc::unavailable (with nats.c's text) when NATS or
  // JetStream does not answer within op_timeout. No watcher yet.
  static result<std::unique_ptr<kv_placement>> open(nats::nats_connection& nc, kv_options options);
  ~kv_placement();
  kv_placement(const kv_placement&) = delete;
  kv_placement& operator=(const kv_placement&) = delete;

  // Puts nodes.<id>; `updated` is set to now when empty.
  status register_node(node_registration registration);
  // Deletes nodes.<id> (an operator retiring a node).
  status remove_node(std::string_view node);
  // Puts tenants.<tenant> (node id, or "" = the ring decides), whatever its revision.
  status set_tenant(std::string_view tenant, std::string_view node_or_empty);
  // Compare-and-set of tenants.<tenant> (kvStore_Update; kvStore_Create when
  // expected_revision is 0, i.e. "no entry yet"). The new revision, or
  // errc::version_conflict when the entry's revision is not expected_revision.
  result<std::uint64_t> move_tenant(std::string_view tenant, std::string_view to,
                                    std::uint64_t expected_revision);
  // The entry's revision; 0 when the tenant has no entry.
  result<std::uint64_t> tenant_revision(std::string_view tenant);

  // Starts the watcher thread (idempotent; once per object: after stop() it stays stopped).
  status start_watch();
  // Waits (bounded) until the watcher applied the initial values;
  // errc::unavailable when `within` passes first.
  status wait_initial(std::chrono::milliseconds within);
  // Stops and joins the watcher (idempotent; not from a listener).
  void stop();

  map_ptr current() const { return _feed.current(); }
  std::uint64_t add_listener(map_listener fn) { return _feed.add_listener(std::move(fn)); }
  void remove_listener(std::uint64_t id) { _feed.remove_listener(id); }
  const kv_options& options() const noexcept { return _options; }

 private:
  kv_placement(nats::nats_connection& nc, kv_options o) : _nc(nc), _options(std::move(o)) {}
  void watch_loop();
  // Wait up to `d`, returning early once stop() was called.
  void pause(std::chrono::milliseconds d);
  void apply_and_publish(const placement_map::node_table& nodes, const placement_map::tenant_table& tenants);

  nats::nats_connection& _nc;
  kv_options _options;
  jsCtx* _js = nullptr;
  kvStore* _kv = nullptr;
  map_feed _feed;

  std::thread _thread;
  std::atomic<bool> _stop{false};
  std::mutex _mu;
  std::condition_variable _cv;
  bool _initial_done = false;  // guarded by _mu
  bool _started = false;       // guarded by _mu
};

}  // namespace esflow::placement
