// log.follow: the follower node kind's source. Tails the data directory's
// event log (every commit of every tenant, in position order) from its
// checkpoint and emits one message per commit: body = the Commit JSON with
// its "position", key = the aggregate's lane key. It is the smallest node
// kind that reads what another kind writes, on the same node store: the
// runner and the projection ingest the same way.
//
// Checkpoint: (tenant "", consumer = param `consumer`, default the pipeline's
// name) in the node store's checkpoints family, written after each batch is
// admitted. NOTE: a crash between that write and the sink's write skips the
// batch's tail for this follower (at most once); consumers that must not
// skip (runner, projection) write their checkpoint in the same write_set as
// their effects.
//
// Concurrency: run() on the source thread; reads block on the log (RocksDB or
// a JetStream direct get) on that thread, never on a TBB worker. Polls every
// `poll` when it has caught up; bounded batches of `batch` commits.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "schemas/json_encode.h"
#include "stages/follower/follower.h"
#include "stages/ingest_context.h"
#include "stages/node_env.h"

#include <condition_variable>
#include <mutex>

namespace esflow::stages {
namespace {

class log_follow final : public graph::stage {
 public:
  log_follow(std::shared_ptr<storage::node_store> store, std::shared_ptr<storage::event_log> log,
             std::string consumer, std::size_t batch, std::chrono::milliseconds poll)
      : _store(std::move(store)),
        _log(std::move(log)),
        _consumer(std::move(consumer)),
        _batch(batch),
        _poll(poll) {}

  void run(graph::source_output& out) override {
    auto from = _store->checkpoints().get({}, _consumer);
    if (!from.ok()) {
      ESFLOW_ERROR("follower", "{}: reading checkpoint: {}", _consumer, from.err().to_string());
      return;
    }
    schemas::position_t after = from.value().value_or(0);
    std::mutex mu;
    std::condition_variable_any cv;
    while (!out.stopping()) {
      auto page = _log->read_from(after, _batch);
      if (!page.ok()) {
        ESFLOW_WARN("follower", "{}: reading the log after {}: {}", _consumer, after, page.err().to_string());
      } else {
        for (auto& pc : page.value()) {
          auto m = graph::make_message();
          m->key = aggregate_key(pc.commit.tenant_id, pc.commit.aggregate_type, pc.commit.aggregate_id);
          m->body = schemas::encode_commit(pc.commit);
          // {"position":P, ...the Commit's fields}
          m->body.insert(1, "\"position\":" + std::to_string(pc.position) + ",");
          if (!out.put(std::move(m))) return;
          after = pc.position;
        }
        if (!page->empty()) {
          auto ws = _store->begin();
          _store->checkpoints().put(ws, {}, _consumer, after);
          if (auto ok = _store->commit(ws); !ok.ok())
            ESFLOW_WARN("follower", "{}: writing checkpoint {}: {}", _consumer, after, ok.err().to_string());
        }
        if (page->size() == _batch) continue;  // more may be waiting
      }
      std::unique_lock lock(mu);
      cv.wait_for(lock, out.stop_token(), _poll, [] { return false; });
    }
  }

 private:
  std::shared_ptr<storage::node_store> _store;
  std::shared_ptr<storage::event_log> _log;
  std::string _consumer;
  std::size_t _batch;
  std::chrono::milliseconds _poll;
};

}  // namespace

graph::stage_descriptor log_follow_descriptor() {
  graph::stage_descriptor d;
  d.kind = "log.follow";
  d.node_kind = "follower";
  d.description = "tails the data directory's event log from a checkpoint: one message per commit";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();  // one thread reads the log in order
  d.params = {
      graph::string_param("consumer", "", "checkpoint name (default: the pipeline's name)"),
      graph::int_param("batch", 256, "commits read per log call", 1, 65536),
      graph::duration_param("poll", 100, "wait between reads once caught up"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto store = node_store_for(init.pipeline, init.services);
    if (!store.ok()) return std::move(store).err();
    auto log = event_log_for(init.pipeline, init.services);
    if (!log.ok()) return std::move(log).err();
    auto consumer = init.spec.params.str("consumer");
    if (consumer.empty()) consumer = init.pipeline.name;
    return std::unique_ptr<graph::stage>(
        new log_follow(std::move(store).value(), std::move(log).value(), consumer,
                       static_cast<std::size_t>(init.spec.params.integer("batch")),
                       std::chrono::milliseconds(init.spec.params.integer("poll"))));
  };
  return d;
}

graph::node_kind_descriptor follower_kind_descriptor() {
  graph::node_kind_descriptor d;
  d.name = "follower";
  d.description = "tails the event log of the data directory (log.follow) into any sinks";
  return d;
}

}  // namespace esflow::stages
