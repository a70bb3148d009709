#include "stages/projection/view_watch.h"

#include "query/eval.h"
#include "query/parser.h"
#include "schemas/json_encode.h"
#include "stages/projection/projection_metrics.h"
#include "stages/projection/projection_service.h"

#include <httplib.h>

#include <condition_variable>
#include <deque>
#include <mutex>

namespace esflow::projection {
namespace {

constexpr auto k_tick = std::chrono::seconds(1);
constexpr int k_ticks_per_keepalive = 15;

// What notify and the stream's HTTP worker share.
struct stream_state {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<row_event> buffer;
  bool overflow = false;
};

std::string sse_row(const row_event& e) {
  return "event: row\nid: " + std::to_string(e.position) + "\ndata: " + row_event_json(e) + "\n\n";
}

std::string sse_error(const std::string& code, const std::string& message) {
  std::string data = "{\"code\":";
  schemas::append_json_string(data, code);
  data += ",\"message\":";
  schemas::append_json_string(data, message);
  return "event: error\ndata: " + data + "}\n\n";
}

}  // namespace

status view_watches::start(const std::shared_ptr<projection_service>& service, const std::string& tenant,
                           const std::string& view, const std::string& filter, httplib::Response& res) {
  std::optional<query::plan> plan;
  if (!filter.empty()) {
    auto p = query::parse_filter(filter);
    if (!p.ok()) return std::move(p).err();
    plan = std::move(p).value();
  }
  auto active = _active;
  if (active->fetch_add(1) >= _limits.max_watchers) {
    active->fetch_sub(1);
    return error::make(errc::unavailable, "this node already streams " +
                                              std::to_string(_limits.max_watchers) +
                                              " watches; retry later or use another node");
  }
  auto state = std::make_shared<stream_state>();
  const auto capacity = _limits.buffer_events;
  const auto id = service->subscribe([state, tenant, view, capacity](const row_event& e) {
    if (e.tenant != tenant || e.view != view) return;
    {
      std::lock_guard lock(state->mu);
      if (state->overflow) return;
      if (state->buffer.size() >= capacity) {
        state->overflow = true;
      } else {
        state->buffer.push_back(e);
      }
    }
    state->cv.notify_one();
  });
  service->metrics().watchers(+1);
  std::weak_ptr<projection_service> weak = service;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state, weak, plan = std::move(plan), capacity, idle = 0](std::size_t,
                                                                httplib::DataSink& sink) mutable {
        std::deque<row_event> batch;
        bool overflow = false;
        {
          std::unique_lock lock(state->mu);
          state->cv.wait_for(lock, k_tick, [&] { return !state->buffer.empty() || state->overflow; });
          batch.swap(state->buffer);
          overflow = state->overflow;
        }
        for (const auto& e : batch) {
          // Every change of a matching row: one that matches after the
          // change, or matched before it (it stops matching, or is deleted).
          if (plan) {
            auto after = nlohmann::json::parse(e.row_json, nullptr, false);
            auto before = nlohmann::json::parse(e.before_json, nullptr, false);
            const bool now = !after.is_null() && query::matches(*plan, e.key, e.version, after);
            const bool was = !before.is_null() && query::matches(*plan, e.key, e.version, before);
            if (!now && !was) continue;
          }
          const auto text = sse_row(e);
          if (!sink.write(text.data(), text.size())) return false;
        }
        if (overflow) {
          const auto text =
              sse_error("slow_consumer", "more than " + std::to_string(capacity) +
                                             " changes waited for this stream; it is closed (changes "
                                             "after the last event were not sent); query, then watch again");
          if (auto s = weak.lock()) s->metrics().watch_dropped();
          sink.write(text.data(), text.size());  // may time out: the client is not reading
          sink.done();
          return true;
        }
        if (weak.expired()) {
          const auto text = sse_error("unavailable", "the node is stopping");
          sink.write(text.data(), text.size());
          sink.done();
          return true;
        }
        if (batch.empty() && ++idle >= k_ticks_per_keepalive) {
          idle = 0;
          static constexpr std::string_view keepalive = ": keep-alive\n\n";
          if (!sink.write(keepalive.data(), keepalive.size())) return false;
        }
        return true;
      },
      [weak, id, active](bool) {
        if (auto s = weak.lock()) {
          s->unsubscribe(id);
          s->metrics().watchers(-1);
        }
        active->fetch_sub(1);
      });
  return {};
}

}  // namespace esflow::projection
