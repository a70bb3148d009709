// source.workload: bench's stand-in for a node's command ingest. Sends the
// bank-account workload (generated, or a JSONL file) into the path HTTP and
// NATS ingest feed — an ingest context per command with its tenant — so
// tenant.gate, decode.command and the node kind's stages run unchanged. The
// answers go to a workload_tally instead of a client.
//
// Concurrency: run() on the source thread, in workload order (blocking put:
// backpressure). The commands are prepared by the factory, so a malformed
// file fails the build (file:line) and the run measures the pipeline alone.
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "stages/bank_workload.h"
#include "stages/builtin.h"
#include "stages/ingest_context.h"
#include "stages/paths.h"
#include "stages/workload_tally.h"

namespace esflow::stages {

std::uint64_t workload_tally::counts::rejected_total() const {
  std::uint64_t n = 0;
  for (const auto& [code, count] : rejected) n += count;
  return n;
}

void workload_tally::complete(const graph::message& m) {
  if (!m.error) {
    _accepted.fetch_add(1, std::memory_order_relaxed);
    const auto* ctx = m.context_as<ingest_context>();
    if (ctx && ctx->answer.find("\"duplicate\":true") != std::string::npos)
      _duplicates.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::lock_guard lock(_mu);
  ++_rejected[m.error->code_text.empty() ? std::string(to_string(m.error->code)) : m.error->code_text];
}

workload_tally::counts workload_tally::read() const {
  counts c;
  c.sent = _sent.load();
  c.accepted = _accepted.load();
  c.duplicates = _duplicates.load();
  std::lock_guard lock(_mu);
  c.rejected = _rejected;
  return c;
}

namespace {

class source_workload final : public graph::stage {
 public:
  source_workload(std::vector<workload_item> items, bool single_tenant, context_factory make_context,
                  std::shared_ptr<workload_tally> tally)
      : _items(std::move(items)),
        _single_tenant(single_tenant),
        _make_context(std::move(make_context)),
        _tally(std::move(tally)) {}

  void run(graph::source_output& out) override {
    for (auto& item : _items) {
      if (out.stopping()) return;
      auto m = graph::make_message();
      m->body = std::move(item.body);
      auto ctx = new_ingest_context(_make_context);
      ctx->transport = "workload";
      ctx->tenant_given = !_single_tenant && !item.tenant.empty();
      ctx->transport_tenant = _single_tenant ? std::string() : std::move(item.tenant);
      m->context = std::move(ctx);
      m->reply = _tally;
      _tally->sent();
      if (!out.put(std::move(m))) return;
    }
  }

 private:
  std::vector<workload_item> _items;
  bool _single_tenant;
  context_factory _make_context;
  std::shared_ptr<workload_tally> _tally;
};

result<std::vector<workload_item>> workload_items(const graph::stage_init& init, bool single_tenant) {
  const auto& p = init.spec.params;
  if (!p.str("file").empty()) {
    return read_workload_file(resolve_path(init.pipeline, p.str("file")), !single_tenant);
  }
  if (p.integer("accounts") == 0 && p.integer("commands") > 0)
    return error::make(errc::invalid_config, "generated commands need accounts >= 1");
  bank_workload_options o;
  o.seed = static_cast<std::uint32_t>(p.integer("seed"));
  o.commands = p.integer("commands");
  o.accounts = p.integer("accounts");
  o.tenants = p.integer("tenants");
  std::vector<workload_item> items;
  for (const auto& c : generate_bank_workload(o))
    items.push_back({single_tenant ? std::string() : c.tenant, command_body(c, !single_tenant)});
  return items;
}

}  // namespace

graph::stage_descriptor source_workload_descriptor() {
  graph::stage_descriptor d;
  d.kind = "source.workload";
  d.description =
      "sends the bank-account workload (generated, or a JSONL file) as ingest commands; tallies the answers "
      "(bench replaces a pipeline's ingest with it)";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();  // one thread sends in workload order
  d.params = {
      graph::string_param("file", std::string(),
                          "JSONL of workload records or command envelopes, relative to the pipeline file "
                          "(empty: generate)"),
      graph::int_param("commands", 20000,
                       "generated run-phase commands (each account's open_account is extra)", 0),
      graph::int_param("accounts", 10000, "generated accounts acc-00000.. (one open_account each)", 0),
      graph::int_param("tenants", 4, "generated tenants tenant-0.. (account k belongs to k % tenants)", 1),
      graph::int_param("seed", 42, "generator seed (one seed, one sequence)", 0, UINT32_MAX),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    const bool single = init.pipeline.settings.str("tenancy") == "single";
    auto items = workload_items(init, single);
    if (!items.ok()) return std::move(items).err();
    auto tally = init.services.get_or_create<workload_tally>(
        workload_tally_name(init.pipeline.name, init.spec.name),
        [] { return result<std::shared_ptr<workload_tally>>(std::make_shared<workload_tally>()); });
    if (!tally.ok()) return std::move(tally).err();
    return std::unique_ptr<graph::stage>(
        new source_workload(std::move(items).value(), single, init.make_context, std::move(tally).value()));
  };
  return d;
}

}  // namespace esflow::stages
