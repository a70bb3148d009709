// jetstream.consumer: commands from a JetStream stream through a durable pull
// consumer, acked after their durable commit. See stages/nats/stages.h for
// the concurrency contract.
#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "stages/ingest_context.h"
#include "stages/nats/stages.h"
#include "stages/node_env.h"
#include "transport/nats/headers.h"
#include "transport/nats/nats_link.h"
#include "transport/node_host.h"

#include <nlohmann/json.hpp>
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace esflow::stages {
namespace {

struct consumer_stats {
  std::atomic<std::uint64_t> received{0}, acked{0}, naked{0}, quarantined{0}, fetch_errors{0}, retried{0},
      redelivered{0};
  std::atomic<std::uint64_t> pending{0};  // the server's count behind the last message fetched (lag)
};

constexpr std::size_t k_max_retry_queue = 1024;

// What the stage and its in-flight ack handles share.
struct consumer_core {
  std::string durable;
  std::string stream;
  std::string filter;
  std::int64_t max_deliver = 5;
  std::int64_t ack_wait_ms = 30000;
  std::int64_t max_ack_pending = 0;
  std::shared_ptr<storage::node_store> store;  // the node's quarantine family
  stages::context_factory make_context;
  std::shared_ptr<nats::nats_connection> conn;
  consumer_stats stats;
  // Quarantined records an operator retries (retry_quarantined_record), taken in by run().
  std::mutex retry_mu;
  std::deque<nlohmann::json> retry_queue;  // guarded by retry_mu

  // Writes the message to the quarantine CF; false when that failed (then the
  // message is nak'ed rather than terminated: nothing is lost).
  bool quarantine(natsMsg* msg, std::uint64_t seq, std::uint64_t delivered, const std::string& reason) {
    nlohmann::json headers = nlohmann::json::object();
    const char** keys = nullptr;
    int count = 0;
    if (natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i)
        if (auto v = nats::get_header(msg, keys[i])) headers[keys[i]] = *v;
      free(static_cast<void*>(keys));
    }
    const nlohmann::json record = {
        {"source", durable},
        {"stream", stream},
        {"stream_sequence", seq},
        {"subject", natsMsg_GetSubject(msg)},
        {"deliveries", delivered},
        {"reason", reason},
        {"headers", headers},
        {"body", std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)))}};
    auto ok = store->quarantine().put(durable, seq,
                                      record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!ok.ok()) {
      ESFLOW_ERROR("nats", "{}: quarantining stream sequence {} failed: {}", durable, seq,
                   ok.err().to_string());
      return false;
    }
    ESFLOW_WARN("nats", "{}: stream sequence {} quarantined after {} deliveries: {}", durable, seq, delivered,
                reason);
    ++stats.quarantined;
    return true;
  }
};

// The ack of a retried quarantine record: the server's message is gone, so a
// nak writes the record back (deliveries + 1) instead of losing it.
class retried_record_ack final : public stages::ingest_ack {
 public:
  retried_record_ack(std::shared_ptr<consumer_core> core, nlohmann::json record)
      : _core(std::move(core)), _record(std::move(record)) {}
  void ack() override { _done.exchange(true); }
  void nak() override {
    if (_done.exchange(true)) return;
    _record["deliveries"] = _record.value("deliveries", std::uint64_t{0}) + 1;
    _record["reason"] = "retried from the quarantine, not processed (unavailable)";
    const auto seq = _record.value("stream_sequence", std::uint64_t{0});
    auto ok = _core->store->quarantine().put(
        _core->durable, seq, _record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    if (!ok.ok())
      ESFLOW_ERROR("nats", "{}: re-quarantining retried stream sequence {} failed: {}", _core->durable, seq,
                   ok.err().to_string());
  }

 private:
  std::shared_ptr<consumer_core> _core;
  nlohmann::json _record;
  std::atomic<bool> _done{false};
};

// Which consumer runs on which store in this process (retry_quarantined_record looks it up).
struct consumer_directory {
  std::mutex mu;
  std::map<std::pair<const storage::node_store*, std::string>, std::weak_ptr<consumer_core>> cores;
};
consumer_directory& consumers() {
  static consumer_directory d;
  return d;
}

// The ingest_ack of one JetStream message (owns it).
class jetstream_ack final : public stages::ingest_ack {
 public:
  jetstream_ack(std::shared_ptr<consumer_core> core, natsMsg* msg, std::uint64_t seq, std::uint64_t delivered)
      : _core(std::move(core)), _msg(msg), _seq(seq), _delivered(delivered) {}
  // Neither ack nor nak (the message was dropped, the node stopped): the
  // server redelivers it after ack_wait.
  ~jetstream_ack() override { natsMsg_Destroy(_msg); }

  void ack() override {
    if (_done.exchange(true)) return;
    if (natsMsg_Ack(_msg, nullptr) == NATS_OK) ++_core->stats.acked;
  }

  void nak() override {
    if (_done.exchange(true)) return;
    if (static_cast<std::int64_t>(_delivered) >= _core->max_deliver &&
        _core->quarantine(
            _msg, _seq, _delivered,
            "not processed (unavailable) on each of " + std::to_string(_delivered) + " deliveries")) {
      natsMsg_Term(_msg, nullptr);
      return;
    }
    ++_core->stats.naked;
    // A little backoff per attempt: a failing dependency gets time to recover.
    natsMsg_NakWithDelay(_msg, std::min<std::int64_t>(100 * static_cast<std::int64_t>(_delivered), 2000),
                         nullptr);
  }

  // Not taken in (the node is stopping): handed back at once, so another
  // replica (or the next start) gets it now rather than after ack_wait.
  void release() {
    if (_done.exchange(true)) return;
    if (natsMsg_Nak(_msg, nullptr) == NATS_OK) ++_core->stats.naked;
  }

 private:
  std::shared_ptr<consumer_core> _core;
  natsMsg* _msg;
  std::uint64_t _seq;
  std::uint64_t _delivered;
  std::atomic<bool> _done{false};
};

struct parsed_subject {
  bool ok = false;
  std::string tenant_token, type, id;
};

// The last five tokens tenant.<t>.command.<type>.<id> of a subject (a stream
// may prefix them, e.g. jobs.tenant.acme.command.Account.a-1).
parsed_subject parse_command_subject(std::string_view s) {
  std::vector<std::string_view> t;
  std::size_t start = 0;
  while (true) {
    const auto dot = s.find('.', start);
    t.push_back(s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  parsed_subject out;
  if (t.size() < 5) return out;
  const auto n = t.size();
  if (t[n - 5] != "tenant" || t[n - 3] != "command") return out;
  out.ok = true;
  out.tenant_token = t[n - 4];
  out.type = t[n - 2];
  out.id = t[n - 1];
  return out;
}

// esflow_jetstream_consumer_*{consumer}: one collector per node host (a
// family is exported once), reading every consumer's stats at scrape time.
class consumer_metrics final : public prometheus::Collectable {
 public:
  void add(std::weak_ptr<consumer_core> core) {
    std::lock_guard lock(_mu);
    _cores.push_back(std::move(core));
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::MetricType;
    prometheus::MetricFamily messages{
        "esflow_jetstream_consumer_messages_total",
        "Messages of a durable consumer by outcome: received, redelivered (delivered before), acked, naked, "
        "quarantined, retried (from the quarantine)",
        MetricType::Counter,
        {}};
    prometheus::MetricFamily pending{"esflow_jetstream_consumer_pending",
                                     "Messages of the stream behind the last one this node fetched (lag)",
                                     MetricType::Gauge,
                                     {}};
    std::lock_guard lock(_mu);
    for (const auto& weak : _cores) {
      auto c = weak.lock();
      if (!c) continue;
      const std::pair<const char*, const std::atomic<std::uint64_t>*> outcomes[] = {
          {"received", &c->stats.received},
          {"redelivered", &c->stats.redelivered},
          {"acked", &c->stats.acked},
          {"naked", &c->stats.naked},
          {"quarantined", &c->stats.quarantined},
          {"retried", &c->stats.retried}};
      for (const auto& [outcome, value] : outcomes) {
        prometheus::ClientMetric m;
        m.label = {{"consumer", c->durable}, {"outcome", outcome}};
        m.counter.value = static_cast<double>(value->load());
        messages.metric.push_back(std::move(m));
      }
      prometheus::ClientMetric lag;
      lag.label = {{"consumer", c->durable}};
      lag.gauge.value = static_cast<double>(c->stats.pending.load());
      pending.metric.push_back(std::move(lag));
    }
    if (messages.metric.empty()) return {};
    return {std::move(messages), std::move(pending)};
  }

 private:
  mutable std::mutex _mu;
  std::vector<std::weak_ptr<consumer_core>> _cores;  // guarded by _mu
};

class jetstream_consumer final : public graph::stage {
 public:
  jetstream_consumer(std::shared_ptr<consumer_core> core, natsSubscription* sub, int batch,
                     std::int64_t fetch_timeout_ms)
      : _core(std::move(core)), _sub(sub), _batch(batch), _fetch_timeout_ms(fetch_timeout_ms) {}
  ~jetstream_consumer() override {
    // Only the local subscription goes; the durable consumer stays for the
    // next start and the other replicas.
    natsSubscription_Destroy(_sub);
  }

  void run(graph::source_output& out) override {
    ESFLOW_INFO("nats", "jetstream.consumer {} on stream {} ({}), max_ack_pending {}", _core->durable,
                _core->stream, _core->filter, _core->max_ack_pending);
    while (!out.stopping()) {
      natsMsgList list{};
      jsErrCode jerr = static_cast<jsErrCode>(0);
      // Bounded: the stop is seen within fetch_timeout.
      const auto s = natsSubscription_Fetch(&list, _sub, _batch, _fetch_timeout_ms, &jerr);
      admit_retries(out);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        ++_core->stats.fetch_errors;
        ESFLOW_DEBUG("nats", "{}: fetch failed: {}", _core->durable, natsStatus_GetText(s));
        // Disconnected or breaker open: wait a little, the link recovers by itself.
        for (int i = 0; i < 10 && !out.stopping(); ++i)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      for (int i = 0; i < list.Count; ++i) {
        natsMsg* msg = list.Msgs[i];
        list.Msgs[i] = nullptr;  // ours now
        admit(out, msg);
      }
      natsMsgList_Destroy(&list);
    }
  }

 private:
  using header_fn = std::function<std::optional<std::string>(const char*)>;

  // A message's context: tenant from a command subject, else the tenant-id header; trace headers.
  std::shared_ptr<stages::ingest_context> context_of(const std::string& subject, std::uint64_t seq,
                                                     const header_fn& header) const {
    auto ctx = stages::new_ingest_context(_core->make_context);
    ctx->transport = "jetstream";
    ctx->subject = subject;
    ctx->stream_sequence = seq;
    const auto parsed = parse_command_subject(subject);
    if (parsed.ok) {
      ctx->tenant_given = true;
      ctx->transport_tenant = parsed.tenant_token == "_" ? std::string() : parsed.tenant_token;
      ctx->subject_type = parsed.type;
      ctx->subject_id = parsed.id;
    } else if (auto t = header(nats::header::tenant_id)) {
      ctx->tenant_given = true;
      ctx->transport_tenant = *t == "_" ? std::string() : *t;
    }
    ctx->incoming_traceparent = header(nats::header::traceparent).value_or("");
    ctx->incoming_correlation_id =
        header(nats::header::x_correlation_id).value_or(header(nats::header::correlation_id).value_or(""));
    return ctx;
  }

  // Records an operator retried: admitted like a fetched message; their ack handle
  // writes a record back to the quarantine on a nak (the server's message is gone).
  void admit_retries(graph::source_output& out) {
    std::deque<nlohmann::json> records;
    {
      std::lock_guard lock(_core->retry_mu);
      records.swap(_core->retry_queue);
    }
    for (auto& r : records) {
      const auto headers = r.value("headers", nlohmann::json::object());
      auto ctx = context_of(r.value("subject", ""), r.value("stream_sequence", std::uint64_t{0}),
                            [&headers](const char* key) -> std::optional<std::string> {
                              auto it = headers.find(key);
                              if (it == headers.end() || !it->is_string()) return std::nullopt;
                              return it->get<std::string>();
                            });
      auto m = graph::make_message();
      m->body = r.value("body", "");
      auto ack = std::make_shared<retried_record_ack>(_core, std::move(r));
      ctx->ack = ack;
      m->context = std::move(ctx);
      ++_core->stats.retried;
      if (!out.put(std::move(m))) ack->nak();
    }
  }

  void admit(graph::source_output& out, natsMsg* msg) {
    ++_core->stats.received;
    std::uint64_t seq = 0, delivered = 1;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      seq = meta->Sequence.Stream;
      delivered = meta->NumDelivered;
      _core->stats.pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    if (delivered > 1) ++_core->stats.redelivered;
    auto ack = std::make_shared<jetstream_ack>(_core, msg, seq, delivered);
    // The server delivers once more than max_deliver: a message whose every
    // attempt died before its answer (a crash loop) ends here, unprocessed.
    if (static_cast<std::int64_t>(delivered) > _core->max_deliver) {
      if (_core->quarantine(msg, seq, delivered,
                            "no answer after " + std::to_string(delivered - 1) + " deliveries (max_deliver)"))
        natsMsg_Term(msg, nullptr);
      return;
    }
    auto ctx = context_of(natsMsg_GetSubject(msg), seq,
                          [msg](const char* key) { return nats::get_header(msg, key); });
    ctx->ack = ack;
    auto m = graph::make_message();
    m->body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    m->context = std::move(ctx);
    // Blocks while the pipeline is full (this is the source's own thread);
    // false when stopping (a drain): the message was fetched but not taken in.
    if (!out.put(std::move(m))) ack->release();
  }

  std::shared_ptr<consumer_core> _core;
  natsSubscription* _sub;
  int _batch;
  std::int64_t _fetch_timeout_ms;
};

result<std::unique_ptr<graph::stage>> make_jetstream_consumer(const graph::stage_init& init) {
  const auto& p = init.spec.params;
  const auto where = init.spec.at.to_string() + ": stage '" + init.spec.name + "' (jetstream.consumer): ";
  const auto config_error = [&](const std::string& what) { return error::config(where + what); };
  auto core = std::make_shared<consumer_core>();
  core->stream = p.str("stream");
  core->filter = p.str("filter");
  if (core->stream.empty()) return config_error("'stream' is required");
  if (core->filter.empty()) return config_error("'filter' is required (a subject of the stream)");
  core->durable = p.str("durable");
  if (core->durable.empty()) core->durable = "esflow-" + init.pipeline.name + "-" + init.spec.name;
  core->max_deliver = p.integer("max_deliver");
  core->ack_wait_ms = p.integer("ack_wait");
  // Tied to the stage's in-flight bound: more unacked messages than the
  // pipeline admits would only wait in this process while others idle.
  core->max_ack_pending = p.integer("max_ack_pending");
  if (core->max_ack_pending == 0)
    core->max_ack_pending = init.spec.max_in_flight > 0 ? init.spec.max_in_flight
                                                        : init.pipeline.settings.integer("max_in_flight");

  auto store = stages::node_store_for(init.pipeline, init.services);
  if (!store.ok()) return std::move(store).err();
  core->store = std::move(store).value();
  core->make_context = init.make_context;
  auto link = nats::nats_link::for_url(init.services, init.pipeline.settings.str("nats_url"));
  // The loader names the file, line and stage of a factory error.
  if (!link.ok()) return std::move(link).err();
  core->conn = link.value()->shared_connection();

  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  auto js = core->conn->jetstream(jo);
  if (!js.ok()) return std::move(js).err();
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = core->stream.c_str();
  so.Config.Durable = core->durable.c_str();
  so.Config.AckPolicy = js_AckExplicit;
  so.Config.AckWait = core->ack_wait_ms * 1'000'000;  // nanoseconds
  // One delivery more than max_deliver: see jetstream_consumer::admit.
  so.Config.MaxDeliver = core->max_deliver + 1;
  so.Config.MaxAckPending = core->max_ack_pending;
  so.Config.FilterSubject = core->filter.c_str();
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const auto s = js_PullSubscribe(&sub, *js, core->filter.c_str(), core->durable.c_str(), &jo, &so, &jerr);
  jsCtx_Destroy(*js);
  if (s != NATS_OK) {
    std::string last;
    if (const char* txt = nats_GetLastError(nullptr)) last = txt;
    return error::make(errc::invalid_config,
                       where + "binding durable consumer '" + core->durable + "' on stream '" + core->stream +
                           "' failed: " + natsStatus_GetText(s) + (last.empty() ? "" : " (" + last + ")"),
                       "jetstream_error=" + std::to_string(static_cast<int>(jerr)));
  }
  std::weak_ptr<consumer_core> weak = core;
  link.value()->add_consumer(core->durable, [weak] {
    auto c = weak.lock();
    if (!c) return nlohmann::json{{"state", "stopped"}};
    return nlohmann::json{{"stream", c->stream},
                          {"filter", c->filter},
                          {"ack_wait_ms", c->ack_wait_ms},
                          {"max_deliver", c->max_deliver},
                          {"max_ack_pending", c->max_ack_pending},
                          {"received", c->stats.received.load()},
                          {"acked", c->stats.acked.load()},
                          {"naked", c->stats.naked.load()},
                          {"quarantined", c->stats.quarantined.load()},
                          {"retried", c->stats.retried.load()},
                          {"redelivered", c->stats.redelivered.load()},
                          {"pending", c->stats.pending.load()},
                          {"fetch_errors", c->stats.fetch_errors.load()}};
  });
  {
    auto& dir = consumers();
    std::lock_guard lock(dir.mu);
    dir.cores[{core->store.get(), core->durable}] = core;
  }
  if (auto host = init.services.find<transport::node_host>("")) {
    auto collector = init.services.get_or_create<consumer_metrics>(
        "jetstream.consumer.metrics", [&host]() -> result<std::shared_ptr<consumer_metrics>> {
          auto made = std::make_shared<consumer_metrics>();
          host->add_metrics(made);
          return made;
        });
    if (collector.ok()) collector.value()->add(weak);
  }
  const int batch = static_cast<int>(std::min<std::int64_t>(p.integer("batch"), core->max_ack_pending));
  return std::unique_ptr<graph::stage>(
      new jetstream_consumer(std::move(core), sub, batch, p.integer("fetch_timeout")));
}

}  // namespace

status retry_quarantined_record(const storage::node_store& store, const nlohmann::json& record) {
  const auto durable = record.value("source", "");
  std::shared_ptr<consumer_core> core;
  {
    auto& dir = consumers();
    std::lock_guard lock(dir.mu);
    auto it = dir.cores.find({&store, durable});
    if (it != dir.cores.end()) core = it->second.lock();
  }
  if (!core)
    return error::make(errc::not_found,
                       "consumer '" + durable + "' does not run on this node's data directory");
  std::lock_guard lock(core->retry_mu);
  if (core->retry_queue.size() >= k_max_retry_queue)
    return error::make(errc::unavailable, "consumer '" + durable + "' has " +
                                              std::to_string(k_max_retry_queue) +
                                              " retries waiting; retry later");
  core->retry_queue.push_back(record);
  return {};
}

graph::stage_descriptor jetstream_consumer_descriptor() {
  graph::stage_descriptor d;
  d.kind = "jetstream.consumer";
  d.description =
      "commands from a JetStream stream (durable pull consumer esflow-<pipeline>-<stage>, explicit ack after "
      "the durable commit, quarantine after max_deliver)";
  d.role = graph::stage_role::source;
  // One fetch loop; the stream's order is kept up to decode (which keys by aggregate).
  d.default_concurrency = graph::concurrency::serial();
  d.params = {
      graph::string_param("stream", std::nullopt, "the stream to consume (e.g. COMMANDS)"),
      graph::string_param("filter", std::nullopt, "filter subject of the consumer (a subject of the stream)"),
      graph::string_param("durable", std::string(),
                          "durable name (empty: esflow-<pipeline>-<stage>, shared by the replicas)"),
      graph::duration_param("ack_wait", 30000, "redelivery when a message is not acked within this"),
      graph::int_param("max_deliver", 5, "deliveries before the message is quarantined and terminated", 1,
                       1000),
      graph::int_param("max_ack_pending", 0,
                       "unacked messages at once (0: the stage's max_in_flight, else the pipeline's)", 0,
                       1 << 20),
      graph::int_param("batch", 64, "messages per fetch", 1, 4096),
      graph::duration_param("fetch_timeout", 500, "longest wait of one fetch (bounds the stop)"),
  };
  d.make = make_jetstream_consumer;
  return d;
}

}  // namespace esflow::stages
