#pragma once
// aggregate_service: what the stages of an aggregate pipeline share — the
// aggregate node kind's service (aggregate_kind.cc), one per data directory
// (service_registry key "aggregate:<data_dir>").
//
// Control plane: made by node::build through the kind's descriptor before
// any stage exists; takes the directory's node store and event log from the
// process (stages/node_env.h: the log's backend is a setting, this service
// never names one); parses `aggregates:` and loads every program; registers
// its metrics, the /info section "programs" and the aggregate reads of the
// HTTP ingest (stages/ingest/aggregate_reads.h).
//
// Data plane (every method thread-safe, none blocks on anything but RocksDB
// reads): rehydrate(), the state cache, decide_command(), the read APIs of
// the HTTP reads (get_state, read_events).
//
// NOTE: a sandbox is not thread-safe: callers pass their own (per lane, or
// thread_local on the commit retry and read paths; sandbox_for()).
#include "common/blocking_pool.h"
#include "common/result.h"
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"
#include "runtime/program.h"
#include "runtime/sandbox.h"
#include "stages/aggregate/aggregate_context.h"
#include "stages/aggregate/aggregate_metrics.h"
#include "stages/aggregate/state_cache.h"
#include "stages/aggregate/tenant_tracker.h"
#include "storage/embedded_event_log.h"
#include "storage/node_store.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace esflow::transport {
class node_host;
}

namespace esflow::aggregate {

// One entry of the `aggregates:` section.
struct aggregate_type_config {
  std::string name;                            // "Account"
  std::string program_path;                    // resolved against the pipeline file's directory
  std::int64_t snapshot_every = 100;           // 0: never
  std::uint64_t gas = 10'000'000;              // instructions per decide/apply call
  std::size_t memory = std::size_t{64} << 20;  // bytes per Lua VM
  // Swapped by aggregate_service::reload_programs() while commands run: read
  // it only through current_program() (one atomic load; the caller's copy
  // keeps the program alive for its call).
  runtime::program_ptr program;
  runtime::program_ptr current_program() const { return std::atomic_load(&program); }
};

// Parses and validates `aggregates:` (errors name file:line and the key) and
// loads each program through `programs`.
result<std::vector<aggregate_type_config>> parse_aggregates(const YAML::Node& section,
                                                            const std::string& file,
                                                            const std::string& base_dir,
                                                            runtime::program_cache& programs);

struct aggregate_service_options {
  std::shared_ptr<storage::node_store> store;
  std::shared_ptr<storage::event_log> log;
  std::size_t cache_bytes = std::size_t{256} << 20;
  std::size_t metrics_tenant_cap = 100;
  std::string pipeline_file;             // for /info
  YAML::Node aggregates;                 // the `aggregates:` section
  std::string base_dir;                  // programs resolve from here
  transport::node_host* host = nullptr;  // metrics + /info, when present
};

// Per-lane (or per-thread) Lua VMs: one per aggregate type, sized from its config.
class sandbox_set {
 public:
  runtime::sandbox& get(const aggregate_type_config& type);

 private:
  std::map<std::string, std::unique_ptr<runtime::sandbox>, std::less<>> _by_type;
};

// A few sandbox sets shared by threads that are not the pipeline's (the HTTP
// reads): their number, not the number of HTTP threads, bounds the memory of
// their Lua VMs. lease() waits when all are in use.
class sandbox_pool {
 public:
  explicit sandbox_pool(std::size_t max_sets) : _max(std::max<std::size_t>(1, max_sets)) {}

  class lease {
   public:
    lease(sandbox_pool& pool, std::unique_ptr<sandbox_set> set) : _pool(pool), _set(std::move(set)) {}
    ~lease() { _pool.give_back(std::move(_set)); }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    sandbox_set& operator*() { return *_set; }

   private:
    sandbox_pool& _pool;
    std::unique_ptr<sandbox_set> _set;
  };
  lease take();
  std::size_t made() const;

 private:
  void give_back(std::unique_ptr<sandbox_set> set);
  std::size_t _max;
  mutable std::mutex _mu;
  std::condition_variable _cv;
  std::vector<std::unique_ptr<sandbox_set>> _idle;  // guarded by _mu
  std::size_t _made = 0;                            // guarded by _mu
};

struct rehydrated {
  state_head head;
  bool cache_hit = false;
  bool guessed = false;      // guess_new: version 0 assumed, nothing read from the log
  std::size_t replayed = 0;  // events applied (cache miss)
};

struct aggregate_state {
  schemas::version_t version = 0;
  std::string state_json;
};

struct event_page {
  std::vector<schemas::event> events;
  std::optional<schemas::version_t> next_after;  // set when more may follow
};

class aggregate_service {
 public:
  static result<std::shared_ptr<aggregate_service>> open(aggregate_service_options options);
  // The directory's service for a pipeline (created on first use: the first
  // pipeline's `aggregates:` wins); cache_mb comes from the pipeline's
  // aggregate.rehydrate stage when it has one.
  static result<std::shared_ptr<aggregate_service>> for_pipeline(const graph::node_kind_init& init);
  ~aggregate_service() = default;
  aggregate_service(const aggregate_service&) = delete;
  aggregate_service& operator=(const aggregate_service&) = delete;

  const aggregate_type_config* find_type(std::string_view name) const;
  const std::vector<aggregate_type_config>& types() const { return _types; }
  std::string type_names() const;  // "Account, Order"
  // POST /admin/reload: re-reads every type's program file; all of them swap
  // (each command uses the program it started with) or, when one fails to
  // load or compile, none does and the error names its file and line.
  // Cached and snapshotted states are kept. Returns the names of the types
  // whose program changed.
  result<std::vector<std::string>> reload_programs();

  storage::event_log& log() { return *_log; }
  // The embedded backend's log (benchmarks read its batch statistics), else null.
  storage::embedded_event_log* embedded_log() { return _embedded; }
  // The log reads from the network (not the embedded one): rehydrate guesses new aggregates.
  bool remote_log() const { return _embedded == nullptr; }
  storage::node_store& store() { return *_store; }
  storage::snapshot_store& snapshots() { return _store->snapshots(); }
  state_cache& cache() { return _cache; }
  aggregate_metrics& metrics() { return *_metrics; }
  const aggregate_service_options& options() const { return _options; }
  // Tenants served: aggregates created, last commit (GET /admin/tenants).
  tenant_tracker& tenants() { return *_tenants; }
  // The HTTP reads' sandboxes (bounded; see sandbox_pool).
  sandbox_pool& read_sandboxes() { return _read_sandboxes; }

  // The aggregate's committed state: cache -> snapshot -> events after it
  // (applied with the type's program in `sb`). tenant_access_denied when a
  // snapshot or event of another tenant turns up (defensive: keys separate
  // tenants). Records the rehydration metrics.
  //
  // guess_new (JetStream backend only, the rehydrate stage's first pass): on
  // a cache miss with no snapshot, answer the initial state at version 0
  // WITHOUT the log read (a blocking round trip to nats-server on a TBB
  // worker) and leave the cache untouched (token 0 = "nothing cached").
  // rehydrated::guessed tells. Safe because the guess is only ever verified:
  // an append at expected version 0 is refused by the server when the
  // aggregate exists (version_conflict -> retry -> real read), and commit
  // re-decides a rejection or an empty decision made on a guess.
  // A cold read on the remote log runs on the caller's thread: the stages
  // call it on a reader thread (read_async), the HTTP reads on their own.
  // A replay of at least `snapshot_every` events leaves a snapshot behind.
  result<rehydrated> rehydrate(const std::string& tenant, const aggregate_type_config& type,
                               const std::string& id, runtime::sandbox& sb, bool guess_new = false);
  // What rehydrate() answers without a network read: a cache hit, or (remote
  // log, guess_new, no snapshot) the guess. nullopt: only the log can tell
  // (on the embedded log: any miss, read locally by rehydrate()).
  result<std::optional<rehydrated>> rehydrate_local(const std::string& tenant,
                                                    const aggregate_type_config& type, const std::string& id,
                                                    runtime::sandbox& sb, bool guess_new);
  // Runs `job` on one of the service's reader threads (remote log only; TBB
  // workers never wait on the network). false: the readers' queue is full
  // (or the log is local): the caller answers unavailable.
  bool read_async(std::function<void()> job);
  // The same, bypassing the cache (tests: snapshot + events vs full replay).
  result<rehydrated> load(const std::string& tenant, const aggregate_type_config& type, const std::string& id,
                          runtime::sandbox& sb, bool use_snapshot);

  // Decides ctx.cmd on the state (ctx.version, ctx.state_json): fills
  // ctx.events (stamped: ids, versions, timestamps, trace) and
  // ctx.new_state_json; a program's rejection or error is returned.
  status decide_command(const aggregate_type_config& type, runtime::sandbox& sb, aggregate_context& ctx);

  // Reads for the HTTP API (any thread; a thread_local sandbox per type).
  // not_found: the aggregate has no events for this tenant.
  result<aggregate_state> get_state(const std::string& tenant, const std::string& type,
                                    const std::string& id);
  // Events with version > after, in order; limit clamped to 1..1000.
  result<event_page> read_events(const std::string& tenant, const std::string& type, const std::string& id,
                                 schemas::version_t after, std::size_t limit);

 private:
  explicit aggregate_service(std::size_t cache_bytes) : _cache(cache_bytes) {}
  // A miss: snapshot + events after it, cached (and snapshotted after a long replay).
  result<rehydrated> load_and_cache(const std::string& tenant, const aggregate_type_config& type,
                                    const std::string& id, runtime::sandbox& sb);
  void snapshot_loaded(const std::string& tenant, const aggregate_type_config& type, const std::string& id,
                       const state_head& head);

  aggregate_service_options _options;
  runtime::program_cache _programs;
  std::mutex _reload_mu;  // one reload at a time
  std::vector<aggregate_type_config> _types;
  // Shared with every node kind on the directory; the log closes before the store.
  std::shared_ptr<storage::node_store> _store;
  std::shared_ptr<storage::event_log> _log;
  storage::embedded_event_log* _embedded = nullptr;  // _log when embedded
  state_cache _cache;
  sandbox_pool _read_sandboxes{4};
  std::unique_ptr<aggregate_metrics> _metrics;
  std::unique_ptr<tenant_tracker> _tenants;  // before _readers: their jobs may record
  // Remote log only: cold reads off the TBB workers. Declared last: stopped
  // (every queued read run) before the members its jobs use go away.
  std::unique_ptr<blocking_pool> _readers;
};

// The thread's own sandboxes (commit retries, reads): never shared.
sandbox_set& thread_sandboxes();

}  // namespace esflow::aggregate
