#pragma once
// Live subscriptions to a view over HTTP: GET /v1/query/<view>/watch?filter=
// streams the tenant's matching row changes as server-sent events
// (docs/contract.md "Projection node": subscriptions; docs/projection.md).
//
//   event: row        data: {"view","key","version","row","position"}   (row null: deleted)
//   event: error      data: {"code","message"}   the last event before the server closes
//   : keep-alive      every 15 s without changes
//
// Bounded: at most `max_watchers` streams per process (more: 503
// unavailable), each with a buffer of `buffer_events` changes of its tenant
// and view. The projection's notify stage only appends to that buffer under
// a short lock and never waits; a stream whose buffer is full is closed with
// a final `error` event (code `slow_consumer`): a slow client never slows the
// projection, and it knows it missed changes. The filter is evaluated on the
// stream's own HTTP worker thread, not on the projection's.
//
// Threads: each stream holds one HTTP worker (bounded by max_watchers); it
// wakes at least every second to notice a closed connection or a stopped node.
#include "common/result.h"

#include <atomic>
#include <cstddef>
#include <memory>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace esflow::projection {

class projection_service;

struct watch_limits {
  std::size_t max_watchers = 16;
  std::size_t buffer_events = 1024;
};

// Serves one watch request (the route's handler): validates, subscribes and
// sets the response's event stream, or answers the error.
// One per projection service (its notify stage's `max_watches` and `watch_buffer`).
class view_watches {
 public:
  explicit view_watches(watch_limits limits = {}) : _limits(limits) {}
  // tenant: validated by the caller. Errors: invalid_query (filter), unavailable (too many streams).
  status start(const std::shared_ptr<projection_service>& service, const std::string& tenant,
               const std::string& view, const std::string& filter, httplib::Response& res);
  std::size_t active() const { return _active->load(); }

 private:
  watch_limits _limits;
  // Shared with the streams: a stream may end after its service is gone.
  std::shared_ptr<std::atomic<std::size_t>> _active = std::make_shared<std::atomic<std::size_t>>(0);
};

}  // namespace esflow::projection
