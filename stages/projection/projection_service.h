#pragma once
// The projection node kind's service, one per pipeline: its views, the
// node store and event log of its data directory, the position tracker, the
// rows its lanes have projected but not yet stored, metrics, the queries of
// /v1/query/<view> and the figures of /admin/views.
//
// Data plane (per commit, stages/projection/stages.h):
//   project  (keyed lane) -> project_commit: reads each view's row (pending
//            first, then the store), folds the commit's new events through
//            the view's Lua program in the lane's own sandbox;
//   store    (keyed lane) -> store_commit: rows + index entries + every
//            view's checkpoint + quarantined failures in ONE write_set;
//   notify   -> row changes to subscribers.
// Control plane: for_pipeline (node build), start_position (the follow source).
// Threads: none of its own; callers' (TBB workers, the source thread, HTTP
// workers for queries).
//
// NOTE: thread-safe. Sandboxes are per lane (lane_sandboxes), never shared.
#include "common/result.h"
#include "graph/node_kind_descriptor.h"
#include "runtime/sandbox.h"
#include "stages/position_tracker.h"
#include "stages/projection/cursor_views.h"
#include "stages/projection/projection_context.h"
#include "stages/projection/view_spec.h"
#include "stages/projection/view_watch.h"
#include "storage/event_log.h"
#include "storage/node_store.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace prometheus {
class Registry;
}

namespace esflow::nats {
class nats_connection;
}

namespace esflow::projection {

class projection_metrics;

// One lane's sandboxes: one per view (each view has its own gas and memory).
class lane_sandboxes {
 public:
  runtime::sandbox& get(std::size_t view_index, const view_config& v);

 private:
  std::vector<std::unique_ptr<runtime::sandbox>> _by_view;
};

// A row change as notify hands it to subscribers.
struct row_event {
  std::string tenant;
  std::string view;
  std::string key;
  schemas::version_t version = 0;
  schemas::position_t position = 0;
  std::string row_json;     // "null" when deleted
  std::string before_json;  // the row before the change; "null" when it had none
};

// {"view","key","version","row","position"}: a change as NATS and watch streams carry it.
std::string row_event_json(const row_event& e);

class projection_service {
 public:
  static result<std::shared_ptr<projection_service>> for_pipeline(const graph::node_kind_init& init);
  ~projection_service();

  const std::vector<view_config>& views() const { return _views; }
  const view_config* find_view(std::string_view name) const;
  bool follows(std::string_view aggregate_type) const;
  const std::string& pipeline() const { return _pipeline; }
  // settings.tenancy single: rows and queries use the empty tenant.
  bool single_tenant() const { return _single_tenant; }

  storage::node_store& store() { return *_store; }
  storage::event_log& log() { return *_log; }
  stages::position_tracker& tracker() { return _tracker; }

  // Where the follow source starts: the lowest checkpoint of the views'
  // generations (a rebuilding one starts at 0).
  result<schemas::position_t> start_position();
  // Writes every view's checkpoints at p (the source, when it passed commits
  // no view follows and nothing is in flight).
  status write_checkpoints(schemas::position_t p);
  // Every generation's checkpoint at p into ws (a live one never below its floor).
  void put_checkpoints(storage::write_set& ws, schemas::position_t p);

  // --- generations and rebuilds (docs/projection.md "Rebuilding a view") ---
  // A view's rows live under a generation: `name` (0) or `name@g`. A rebuild
  // folds the whole log into generation g+1 beside the live one, which keeps
  // answering queries and following the log; once the rebuild has caught up
  // with what the live rows held, the new generation becomes live (one
  // write_set) and the old one's keys are erased in bounded batches.
  // Starts a rebuild (idempotent while one runs): the view's state.
  result<nlohmann::json> start_rebuild(const std::string& view);
  // The source, after each read: switches caught-up rebuilds, erases a batch
  // of a dropped generation when nothing is in flight.
  void tend_generations();
  // Where queries read the view's rows.
  std::string live_store(const view_config& v) const;
  // Every commit up to it is in the view's live rows.
  schemas::position_t view_position(const view_config& v) const;
  // Waits until view_position(v) >= p or the deadline passes.
  bool wait_for_position(const view_config& v, schemas::position_t p,
                         std::chrono::steady_clock::time_point deadline) const;

  // project: each view's new row for the commit's events it does not hold yet.
  // A program failure is a view_failure (the view skips this commit); an
  // error return is a storage failure (retry the commit).
  status project_commit(lane_sandboxes& lanes, projection_context& ctx);
  // store: ONE write_set with the rows, index entries, checkpoints and
  // quarantined failures; unsynced (rows can be rebuilt from the log).
  status store_commit(projection_context& ctx);
  // A failed store: forget the commit's pending rows and refuse the row's
  // later commits (unavailable) until the source has rewound: none may be
  // folded onto a row that lacks this commit.
  void forget_pending(const projection_context& ctx);
  // The source re-reads the log from the watermark: every pending row and
  // refusal is void.
  void rewound();

  // Subscribers of row changes (notify); returns an id for unsubscribe.
  using subscriber = std::function<void(const row_event&)>;
  std::uint64_t subscribe(subscriber s);
  void unsubscribe(std::uint64_t id);
  // Hands the commit's changes to subscribers and, when the pipeline has a
  // NATS URL, publishes each on tenant.<t>.view.<view>.<key> (core NATS,
  // fire and forget: nats.c buffers; a failure is counted, never waited on).
  void notify(const projection_context& ctx);

  // GET /admin/views: per view position, lag, rows, state.
  nlohmann::json views_json();
  std::int64_t rows(const view_config& v) const;

  projection_metrics& metrics() { return *_metrics; }
  view_watches& watches() { return *_watches; }
  cursor_views& cursors() { return _cursors; }

 private:
  projection_service() = default;
  std::string pending_key(const std::string& tenant, const std::string& store_view,
                          const std::string& key) const;
  result<std::optional<row_value>> current_row(const std::string& tenant, const std::string& store_view,
                                               const std::string& key);
  std::int64_t count_rows(const std::string& store_view);
  void project_view(lane_sandboxes& lanes, projection_context& ctx, std::size_t view,
                    const std::string& store_view, bool live);

  std::string _pipeline;
  bool _single_tenant = false;
  std::vector<view_config> _views;
  runtime::program_cache _programs;
  std::shared_ptr<storage::node_store> _store;
  std::shared_ptr<storage::event_log> _log;
  stages::position_tracker _tracker;
  std::unique_ptr<projection_metrics> _metrics;
  // Per view (by index), under _gen_mu.
  struct generations {
    std::uint64_t live = 0;
    std::uint64_t next = 0;         // 0: no rebuild
    schemas::position_t floor = 0;  // every commit up to it is in the live rows
    std::int64_t live_rows = 0, next_rows = 0;
    std::uint64_t drop = 0;  // 1 + the generation being erased; 0: none
    std::string drop_after;  // where the erasing continues
  };
  struct target {
    std::string store_view, checkpoint;
    bool live = true;
  };
  std::vector<target> targets_locked(std::size_t view) const;
  status load_generations();
  mutable std::mutex _gen_mu;
  std::vector<generations> _gens;

  std::mutex _pending_mu;
  std::unordered_map<std::string, row_value> _pending;  // projected, not yet stored
  std::unordered_set<std::string> _poisoned;            // row lanes waiting for a rewind

  std::shared_ptr<nats::nats_connection> _nats;  // null: no NATS configured
  std::unique_ptr<view_watches> _watches;
  cursor_views _cursors;  // declared after _store: its snapshots go first

  std::mutex _subscribers_mu;
  std::uint64_t _next_subscriber = 1;
  std::unordered_map<std::uint64_t, subscriber> _subscribers;
};

// Where a generation of a view keeps its rows ("accounts", "accounts@2"),
// and its checkpoint's name in the checkpoints family ("view:accounts@2").
std::string view_store_name(const view_config& v, std::uint64_t generation);
std::string view_checkpoint_name(const view_config& v, std::uint64_t generation = 0);

}  // namespace esflow::projection
