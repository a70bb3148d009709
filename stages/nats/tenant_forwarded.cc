// tenant.forwarded: the stream messages other replicas forwarded to this node
// because it owns their tenants (tenant.route, docs/runner.md "Saga
// replicas"), taken in as if this node had fetched them: transport
// "forwarded", the stream's subject and sequence from the forward's headers.
// The ack handle answers the forward: "ok" once the message is acked here
// (committed, or finally answered), "retry" on a nak; a message dropped
// unanswered (the node stopped) times out at the sender, which sends it again.
//
// Concurrency: run() owns a synchronous subscription on
// `_ESFLOW.forward.<pipeline>.<node>` and admits with put() on its own thread
// (backpressure, never a TBB worker). Idle without a node id.
#include "common/log.h"
#include "graph/pipeline_spec.h"
#include "stages/ingest_context.h"
#include "stages/nats/forwarder.h"
#include "stages/nats/stages.h"
#include "stages/nats/tenant_router.h"
#include "transport/nats/headers.h"

#include <charconv>
#include <thread>

namespace esflow::stages {
namespace {

class forward_answer final : public ingest_ack {
 public:
  forward_answer(std::shared_ptr<nats::nats_connection> conn, std::string reply_to)
      : _conn(std::move(conn)), _reply_to(std::move(reply_to)) {}
  void ack() override { send("ok"); }
  void nak() override { send("retry"); }

 private:
  void send(const char* status) {
    if (_done.exchange(true) || _reply_to.empty()) return;
    natsMsg* msg = nullptr;
    auto s = natsMsg_Create(&msg, _reply_to.c_str(), nullptr, nullptr, 0);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, k_forward_status_header, status);
    if (s == NATS_OK) s = natsConnection_PublishMsg(_conn->raw(), msg);
    natsMsg_Destroy(msg);
    if (s != NATS_OK)
      ESFLOW_DEBUG("nats", "forward answer to {} not sent: {} (the sender asks again)", _reply_to,
                   natsStatus_GetText(s));
  }

  std::shared_ptr<nats::nats_connection> _conn;
  std::string _reply_to;
  std::atomic<bool> _done{false};
};

class tenant_forwarded final : public graph::stage {
 public:
  tenant_forwarded(std::shared_ptr<tenant_router> router, context_factory make_context)
      : _router(std::move(router)), _make_context(std::move(make_context)) {}

  void run(graph::source_output& out) override {
    if (!_router) {
      while (!out.stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return;
    }
    auto conn = _router->connection();
    natsSubscription* sub = nullptr;
    auto s = natsConnection_SubscribeSync(&sub, conn->raw(), _router->own_subject().c_str());
    if (s != NATS_OK) {
      ESFLOW_ERROR("nats", "tenant.forwarded: subscribing to {} failed: {}", _router->own_subject(),
                   natsStatus_GetText(s));
      while (!out.stopping()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return;
    }
    natsSubscription_SetPendingLimits(sub, 65536, 64 << 20);
    natsConnection_FlushTimeout(conn->raw(), 2000);
    while (!out.stopping()) {
      natsMsg* msg = nullptr;
      // Bounded: the stop is seen within 200 ms.
      s = natsSubscription_NextMsg(&msg, sub, 200);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      admit(out, conn, msg);
      natsMsg_Destroy(msg);
    }
    // Not taken in: no answer; the senders time out and send them again (to this node once it is back).
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }

 private:
  void admit(graph::source_output& out, const std::shared_ptr<nats::nats_connection>& conn, natsMsg* msg) {
    const char* reply = natsMsg_GetReply(msg);
    auto answer = std::make_shared<forward_answer>(conn, reply ? reply : "");
    auto ctx = new_ingest_context(_make_context);
    ctx->transport = "forwarded";
    ctx->subject = nats::get_header(msg, k_forward_subject_header).value_or("");
    const auto seq = nats::get_header(msg, k_forward_sequence_header).value_or("0");
    std::from_chars(seq.data(), seq.data() + seq.size(), ctx->stream_sequence);
    if (auto t = tenant_of_subject(ctx->subject)) {
      ctx->tenant_given = true;
      ctx->transport_tenant = *t;
    }
    ctx->incoming_traceparent = nats::get_header(msg, nats::header::traceparent).value_or("");
    ctx->incoming_correlation_id = nats::get_header(msg, nats::header::x_correlation_id).value_or("");
    ctx->ack = answer;
    auto m = graph::make_message();
    m->body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    m->context = std::move(ctx);
    _router->count_received();
    if (!out.put(std::move(m))) answer->nak();
  }

  std::shared_ptr<tenant_router> _router;
  context_factory _make_context;
};

}  // namespace

graph::stage_descriptor tenant_forwarded_descriptor() {
  graph::stage_descriptor d;
  d.kind = "tenant.forwarded";
  d.description =
      "stream messages other replicas forward to this node (it owns their tenants: tenant.route), answered "
      "once acked here";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    auto router = tenant_router::of(init.pipeline, init.services);
    if (!router.ok()) return std::move(router).err();
    return std::unique_ptr<graph::stage>(new tenant_forwarded(std::move(router).value(), init.make_context));
  };
  return d;
}

}  // namespace esflow::stages
