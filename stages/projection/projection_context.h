#pragma once
// The projection node kind's message context: ingest_context (the follow
// source sets the commit's tenant as the transport tenant; tenant.gate
// validates it) + the decoded commit, its log position and what each view
// made of it (project) for store and notify.
#include "common/error.h"
#include "stages/ingest_context.h"
#include "stages/projection/row_value.h"

#include <optional>
#include <vector>

namespace esflow::projection {

struct view_config;

// One view row changed by one commit.
struct row_change {
  const view_config* view = nullptr;
  std::string store_view;           // where its rows live: the view's live or rebuilding generation
  bool live = true;                 // the generation queries read (false: a rebuild's)
  std::string key;                  // the row key (aggregate id)
  std::optional<row_value> before;  // what was stored (or pending) before; nullopt: no row
  row_value after;                  // after.deleted: the program deleted the row
};

// A view whose program failed on this commit: quarantined, the view moves on.
struct view_failure {
  const view_config* view = nullptr;
  esflow::error error;
};

struct projection_context : stages::ingest_context {
  using base = stages::ingest_context;
  projection_context() = default;
  explicit projection_context(stages::ingest_context&& b) : ingest_context(std::move(b)) {}

  // --- projection.follow / projection.decode ---------------------------------
  schemas::position_t position = 0;
  schemas::commit commit;
  bool decoded = false;
  // --- projection.project ---------------------------------------------------------
  std::vector<row_change> changes;
  std::vector<view_failure> failures;
  std::optional<esflow::error> storage_error;  // a row read failed: retry the commit

  std::string_view context_name() const noexcept override { return "projection"; }
  log_fields log_ids() const noexcept override {
    auto f = ingest_context::log_ids();
    if (decoded) {
      f.aggregate_type = commit.aggregate_type;
      f.aggregate_id = commit.aggregate_id;
    }
    return f;
  }
};

inline projection_context& context_of(graph::message& m) {
  return stages::context_for<projection_context>(m, "the projection stages");
}

// The lane key of a row: tenant and row key (views key rows by aggregate id,
// so one aggregate's commits meet each row in order in every view).
inline std::string row_lane_key(const std::string& tenant, const std::string& aggregate_id) {
  return tenant + '\x1f' + aggregate_id;
}

}  // namespace esflow::projection
