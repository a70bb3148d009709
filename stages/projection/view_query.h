#pragma once
// A view query (docs/contract.md "Projection node": GET /v1/query/<view>):
// the parsed request, its execution over one tenant's rows of one view, and
// the answer. Shared by the HTTP route and (later) gRPC QueryService.
//
// Execution (docs/projection.md "How a query runs"):
//   - key order (no order_by, or order_by=key): the rows in key order from
//     the cursor; the filter checks each row;
//   - index order: order_by on an indexed field, or no order_by and a
//     filter whose leading term an index can serve (query/index_probe.h):
//     the field's index entries in (value, key) order, only the probe's
//     ranges when there is one;
//   - sorted: order_by on a field without an index, or :desc: every
//     matching row is collected (at most `max_sort_rows`, else
//     invalid_query saying to index the field or narrow the filter) and sorted.
// Every query is bounded: at most `max_scan` rows and index entries read and
// `budget` of time; past either it answers the rows it has with a cursor
// that continues where it stopped.
// Cursors are opaque (hex) and bound to the tenant, view, filter and order
// (a cursor of another query or tenant is invalid_query).
#include "common/result.h"
#include "schemas/envelopes.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace esflow::projection {

class projection_service;
struct view_config;

struct query_limits {
  std::size_t max_scan = 100'000;
  std::size_t max_sort_rows = 10'000;
  std::chrono::milliseconds budget{1000};
};

struct query_request {
  std::string tenant;
  std::string view;
  std::optional<std::string> filter;  // absent or empty: every row
  std::optional<std::string> limit;   // default 100, at most 1000 (clamped)
  std::optional<std::string> cursor;
  std::optional<std::string> order_by;  // field[:asc|:desc]
  std::optional<std::string> min_position;
  std::optional<std::string> wait_ms;  // default 0, at most 5000 (clamped)
};

struct query_row {
  std::string key;
  schemas::version_t version = 0;
  std::string row_json;
};

struct query_answer {
  std::vector<query_row> rows;
  std::optional<std::string> next_cursor;
  schemas::position_t position = 0;
  std::size_t scanned = 0;
};

// Runs the query on the service's view; errors: invalid_query (bad
// parameter, filter, cursor, unknown view, an unindexed sort over too many
// rows), unavailable (min_position not reached in wait_ms; storage down).
result<query_answer> run_query(projection_service& service, const query_request& request,
                               const query_limits& limits = {});

// {"rows":[{"key","version","row"}],"next_cursor":...,"position":...}
std::string answer_json(const query_answer& a);

}  // namespace esflow::projection
