#include "storage/jetstream/jetstream_backend.h"

#include "common/log.h"
#include "storage/jetstream/jetstream_event_log.h"
#include "storage/jetstream/jetstream_metrics.h"
#include "storage/jetstream/jetstream_workflow_stream.h"
#include "transport/nats/durability_check.h"
#include "transport/nats/nats_link.h"
#include "transport/nats/stream_policy.h"

namespace esflow::storage::jetstream {
namespace {

// The first server of a comma-separated URL list (the durability check reads its INFO line).
std::string first_url(const std::string& urls) { return urls.substr(0, urls.find(',')); }

struct js_guard {
  jsCtx* js = nullptr;
  ~js_guard() {
    if (js != nullptr) jsCtx_Destroy(js);
  }
};

struct setup_report {
  nlohmann::json streams = nlohmann::json::array();
  nlohmann::json durability = nlohmann::json::object();
};

// docs/contract.md "JetStream streams": created if missing, validated if present, never changed.
result<setup_report> set_up_streams(nats::nats_connection& conn, const nats::streams_config& streams) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  auto js = conn.jetstream(jo);
  if (!js.ok()) return std::move(js).err();
  js_guard guard{*js};
  setup_report out;
  for (const auto& spec : {nats::aggregate_events_spec(streams), nats::workflow_commands_spec(streams),
                           nats::workflow_events_spec(streams)}) {
    auto r = nats::ensure_stream(guard.js, spec);
    if (!r.ok()) {
      auto e = std::move(r).err();
      e.message = "stream " + spec.name + ": " + e.message;
      return e;
    }
    out.streams.push_back(
        {{"name", spec.name},
         {"subjects", spec.subjects},
         {"outcome", r.value() == nats::stream_outcome::created ? "created" : "validated"}});
  }
  auto report = nats::check_durability(first_url(conn.options().url), guard.js, "AGGREGATE_EVENTS");
  if (report.ok()) {
    const auto& d = report.value();
    if (!d.warning.empty()) ESFLOW_WARN("jetstream", "{}", d.warning);
    out.durability = {{"server_version", d.server_version}, {"replicas", d.replicas},
                      {"fsync_capable", d.fsync_capable},   {"replicated", d.replicated},
                      {"description", d.description},       {"warning", d.warning}};
    for (auto& st : out.streams)
      if (st["name"] == "AGGREGATE_EVENTS") st["replicas"] = d.replicas;
  } else {
    ESFLOW_WARN("jetstream", "durability self-check failed: {}", report.err().to_string());
    out.durability = {{"error", report.err().to_string()}};
  }
  return out;
}

// What the log's owner keeps alive, released after the log closes.
struct keep_alive {
  std::shared_ptr<node_store> store;
  std::shared_ptr<nats::nats_link> link;
};

// The process's NATS link of settings.nats_url (shared by the log, the
// workflow streams and the NATS stages).
result<std::shared_ptr<nats::nats_link>> link_of(const event_log_settings& s, const event_log_env& env) {
  if (s.nats_url.empty())
    return error::make(errc::invalid_config,
                       "event_log: jetstream needs settings.nats_url (or ESFLOW_NATS_URL / --nats URL)",
                       s.origin);
  if (env.services == nullptr) return error::make(errc::internal, "jetstream backend without services");
  return nats::nats_link::for_url(*env.services, s.nats_url);
}

}  // namespace

event_log_backend jetstream_backend() {
  return {"jetstream",
          "NATS JetStream stream AGGREGATE_EVENTS: one subject per aggregate, scaled out over a cluster",
          [](const event_log_settings& s, const event_log_env& env) -> result<std::shared_ptr<event_log>> {
            auto link = link_of(s, env);
            if (!link.ok()) return std::move(link).err();
            nats::streams_config streams;
            streams.replicas = s.stream_replicas;
            auto setup = set_up_streams(link.value()->connection(), streams);
            if (!setup.ok()) return std::move(setup).err();

            jetstream_options o;
            o.ensure_stream = false;  // done above
            o.streams = streams;
            o.dedupe_ttl = s.dedupe_ttl;
            auto opened = jetstream_event_log::open(link.value()->connection(), *env.store, o);
            if (!opened.ok()) return std::move(opened).err();
            auto log = owning_log(std::move(opened).value(),
                                  std::make_shared<keep_alive>(keep_alive{env.store, link.value()}));

            if (env.set_info) {
              auto report = std::make_shared<setup_report>(std::move(setup).value());
              env.set_info("streams", [report] { return report->streams; });
              env.set_info("durability", [report] { return report->durability; });
            }
            publish_storage_info(env, "jetstream");
            if (env.add_metrics)
              env.add_metrics(std::make_shared<jetstream_metrics>(log, link.value()->shared_connection()));
            return log;
          },
          [](const event_log_settings& s, const event_log_env& env,
             const std::string& stream) -> result<std::shared_ptr<workflow_stream>> {
            auto link = link_of(s, env);
            if (!link.ok()) return std::move(link).err();
            jetstream_stream_options o;
            o.streams.replicas = s.stream_replicas;  // created or validated on open
            auto opened = jetstream_workflow_stream::open(link.value()->connection(), stream, o);
            if (!opened.ok()) return std::move(opened).err();
            return owning_stream(std::move(opened).value(), link.value());
          }};
}

}  // namespace esflow::storage::jetstream
