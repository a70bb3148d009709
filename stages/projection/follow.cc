// projection.follow: the projection's ingest. Tails the data directory's
// event log (the embedded log's commits, or AGGREGATE_EVENTS on JetStream)
// from the views' lowest checkpoint, in position order, and admits one
// message per commit of a followed aggregate type: body = the Commit JSON,
// position in the context, the commit's tenant as the transport tenant.
// Every admitted position is tracked (position_tracker) until the shared
// `ack` stage acks it (done) or naks it (a transient failure: the source
// re-reads the log from the watermark once nothing is in flight).
//
// Concurrency: run() on the source thread; log reads block there (RocksDB or
// JetStream direct gets), never on a TBB worker. Bounded batches of `batch`
// commits; polls every `poll` once caught up; the pipeline's max_in_flight
// bounds what is admitted.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/json_encode.h"
#include "stages/projection/projection_metrics.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/stages.h"

#include <condition_variable>
#include <mutex>

namespace esflow::projection {
namespace {

class position_ack final : public stages::ingest_ack {
 public:
  position_ack(std::shared_ptr<projection_service> service, schemas::position_t p)
      : _service(std::move(service)), _p(p) {}
  void ack() override { _service->tracker().done(_p); }
  void nak() override { _service->tracker().failed(_p); }

 private:
  std::shared_ptr<projection_service> _service;
  schemas::position_t _p;
};

class follow final : public graph::stage {
 public:
  follow(std::shared_ptr<projection_service> service, stages::context_factory make_context, std::size_t batch,
         std::chrono::milliseconds poll)
      : _service(std::move(service)), _make_context(std::move(make_context)), _batch(batch), _poll(poll) {}

  void run(graph::source_output& out) override {
    auto& tracker = _service->tracker();
    auto start = _service->start_position();
    while (!start.ok() && !out.stopping()) {
      ESFLOW_WARN("projection", "{}: reading the views' checkpoints: {}", _service->pipeline(),
                  start.err().to_string());
      idle(out);
      start = _service->start_position();
    }
    if (!start.ok()) return;
    schemas::position_t after = start.value();
    schemas::position_t checkpointed = after;
    tracker.reset(after);
    ESFLOW_INFO("projection", "{}: following the log after position {}", _service->pipeline(), after);
    auto last_figures = std::chrono::steady_clock::now() - std::chrono::hours(1);
    while (!out.stopping()) {
      if (auto from = tracker.take_rewind()) {
        ESFLOW_WARN(
            "projection",
            "{}: re-reading the log after position {} (a view rebuild started, or a commit failed to store)",
            _service->pipeline(), *from);
        _service->rewound();
        after = *from;
      }
      auto page = _service->log().read_from(after, _batch);
      if (!page.ok()) {
        ESFLOW_WARN("projection", "{}: reading the log after {}: {}", _service->pipeline(), after,
                    page.err().to_string());
        idle(out);
        continue;
      }
      for (auto& pc : page.value()) {
        if (_service->follows(pc.commit.aggregate_type)) {
          auto m = graph::make_message();
          auto ctx = std::dynamic_pointer_cast<projection_context>(stages::new_ingest_context(_make_context));
          if (!ctx) ctx = std::make_shared<projection_context>();
          ctx->transport = "log";
          ctx->tenant_given = true;
          ctx->transport_tenant = pc.commit.tenant_id;
          if (!pc.commit.events.empty()) {
            ctx->incoming_correlation_id = pc.commit.events.front().correlation_id;
          }
          ctx->position = pc.position;
          ctx->ack = std::make_shared<position_ack>(_service, pc.position);
          m->key = row_lane_key(pc.commit.tenant_id, pc.commit.aggregate_id);
          m->body = schemas::encode_commit(pc.commit);
          m->context = std::move(ctx);
          tracker.begin(pc.position);
          if (!out.put(std::move(m))) {
            tracker.failed(pc.position);
            return;
          }
        }
        tracker.passed(pc.position);
        after = pc.position;
      }
      _service->tend_generations();  // switches caught-up rebuilds; erases dropped generations
      const auto now = std::chrono::steady_clock::now();
      if (now - last_figures >= std::chrono::seconds(1)) {
        last_figures = now;
        _service->views_json();  // refreshes the position and lag gauges
      }
      if (page->size() == _batch) continue;  // more may be waiting
      // Caught up: a stretch of commits no view follows moves the checkpoints too.
      const auto w = tracker.watermark();
      if (tracker.in_flight() == 0 && w > checkpointed) {
        if (auto st = _service->write_checkpoints(w); st.ok())
          checkpointed = w;
        else
          ESFLOW_WARN("projection", "{}: writing checkpoints at {}: {}", _service->pipeline(), w,
                      st.err().to_string());
      }
      idle(out);
    }
  }

 private:
  void idle(graph::source_output& out) {
    std::unique_lock lock(_mu);
    _cv.wait_for(lock, out.stop_token(), _poll, [] { return false; });
  }

  std::shared_ptr<projection_service> _service;
  stages::context_factory _make_context;
  std::size_t _batch;
  std::chrono::milliseconds _poll;
  std::mutex _mu;
  std::condition_variable_any _cv;
};

}  // namespace

graph::stage_descriptor follow_descriptor() {
  graph::stage_descriptor d;
  d.kind = "projection.follow";
  d.node_kind = "projection";
  d.description = "tails the event log from the views' checkpoint: one message per commit of a followed type";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::int_param("batch", 256, "commits read per log call", 1, 65536),
      graph::duration_param("poll", 20, "wait between reads once caught up"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto service = init.service_as<projection_service>();
    if (!service) return error::make(errc::internal, "the projection node kind made no service");
    return std::unique_ptr<graph::stage>(new follow(
        std::move(service), init.make_context, static_cast<std::size_t>(init.spec.params.integer("batch")),
        std::chrono::milliseconds(init.spec.params.integer("poll"))));
  };
  return d;
}

}  // namespace esflow::projection
