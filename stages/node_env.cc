#include "stages/node_env.h"

#include "storage/event_log_factory.h"
#include "transport/node_host.h"

#include <filesystem>

namespace esflow::stages {
namespace {

// The log of a directory with the backend it was made with.
struct directory_log {
  std::string backend;
  std::shared_ptr<storage::event_log> log;
};

}  // namespace

std::string data_dir_of(const graph::pipeline_spec& p) {
  return storage::normalise_data_dir(p.settings.str("data_dir"));
}

const std::vector<graph::param_spec>& node_settings_schema() {
  static const std::vector<graph::param_spec> schema = {
      graph::string_param("data_dir", "./data",
                          "RocksDB directory (the node store; shared by every node kind)"),
      graph::choice_param("durability", "fsync", {"fsync", "relaxed"},
                          "fsync: answer after the WAL is fsynced; relaxed: the OS flushes"),
      graph::choice_param("event_log", "embedded", {"embedded", "jetstream"}, "event-log backend"),
      graph::string_param("nats_url", "", "NATS URL (jetstream backend and NATS ingest)"),
      graph::duration_param("dedupe_ttl", 24LL * 3600 * 1000, "how long command ids are remembered"),
      graph::int_param("stream_replicas", 1,
                       "replicas of the JetStream streams esflow creates (1 dev, 3 prod)", 1, 5),
      graph::choice_param("tenancy", "multi", {"multi", "single"}, "tenant mode"),
      graph::int_param("metrics_tenant_cap", 100, "distinct tenant_id label values before 'other'", 1,
                       100000),
  };
  return schema;
}

result<std::shared_ptr<storage::node_store>> node_store_for(const graph::pipeline_spec& pipeline,
                                                            esflow::service_registry& services) {
  storage::node_store_options o;
  o.data_dir = data_dir_of(pipeline);
  o.mode = pipeline.settings.str("durability") == "relaxed" ? storage::durability::relaxed
                                                            : storage::durability::fsync;
  // The registry keeps the store open as long as the process's nodes run.
  auto made = services.get_or_create<storage::node_store>(
      "store:" + o.data_dir, [&]() -> result<std::shared_ptr<storage::node_store>> {
        auto store = storage::node_store::shared(o);
        if (!store.ok()) return std::move(store).err();
        if (auto host = services.find<transport::node_host>("")) {
          std::weak_ptr<storage::node_store> weak = store.value();
          host->add_health_check("storage", [weak]() -> transport::check_result {
            auto s = weak.lock();
            if (!s) return {false, "node store closed"};
            auto ok = s->probe(std::chrono::milliseconds(1000));
            return ok.ok() ? transport::check_result{true, "ok"}
                           : transport::check_result{false, ok.err().to_string()};
          });
        }
        return store;
      });
  if (!made.ok()) return made;
  const auto& store = made.value();
  if (store->mode() != o.mode)
    return error::make(errc::invalid_config, "data directory " + o.data_dir + " is open with durability " +
                                                 std::string(storage::to_string(store->mode())) +
                                                 "; pipeline '" + pipeline.name + "' asks for " +
                                                 pipeline.settings.str("durability"));
  return made;
}

namespace {

// The settings and env a backend is built from (the pipeline's node settings).
storage::event_log_settings backend_settings(const graph::pipeline_spec& pipeline) {
  storage::event_log_settings s;
  s.backend = pipeline.settings.str("event_log");
  s.nats_url = pipeline.settings.str("nats_url");
  s.dedupe_ttl = std::chrono::milliseconds(pipeline.settings.integer("dedupe_ttl"));
  s.stream_replicas = static_cast<int>(pipeline.settings.integer("stream_replicas"));
  s.origin = pipeline.file;
  return s;
}

storage::event_log_env backend_env(std::shared_ptr<storage::node_store> store,
                                   esflow::service_registry& services) {
  storage::event_log_env env;
  env.store = std::move(store);
  env.services = &services;
  if (auto host = services.find<transport::node_host>("")) {
    env.set_info = [host](const std::string& key, std::function<nlohmann::json()> provider) {
      host->set_info(key, std::move(provider));
    };
    env.add_metrics = [host](std::shared_ptr<prometheus::Collectable> c) { host->add_metrics(std::move(c)); };
  }
  return env;
}

// A directory's workflow stream, in the registry.
struct directory_stream {
  std::shared_ptr<storage::workflow_stream> stream;
};

}  // namespace

result<std::shared_ptr<storage::event_log>> event_log_for(const graph::pipeline_spec& pipeline,
                                                          esflow::service_registry& services) {
  auto store = node_store_for(pipeline, services);
  if (!store.ok()) return std::move(store).err();
  const auto backend = pipeline.settings.str("event_log");
  auto made = services.get_or_create<directory_log>(
      "event_log:" + store.value()->data_dir(), [&]() -> result<std::shared_ptr<directory_log>> {
        auto factory = services.find<storage::event_log_factory>("");
        if (!factory) return error::make(errc::internal, "no event-log factory in this process");
        auto s = backend_settings(pipeline);
        auto env = backend_env(store.value(), services);
        auto log = factory->make(s, env);
        if (!log.ok()) return std::move(log).err();
        return std::make_shared<directory_log>(directory_log{backend, std::move(log).value()});
      });
  if (!made.ok()) return std::move(made).err();
  if (made.value()->backend != backend)
    return error::make(errc::invalid_config, "data directory " + store.value()->data_dir() +
                                                 " already uses the " + made.value()->backend +
                                                 " event log; pipeline '" + pipeline.name + "' asks for " +
                                                 backend + " (one directory, one event log)");
  return made.value()->log;
}

result<std::shared_ptr<storage::workflow_stream>> workflow_stream_for(const graph::pipeline_spec& pipeline,
                                                                      esflow::service_registry& services,
                                                                      const std::string& stream_name) {
  if (storage::workflow_stream_subjects(stream_name).empty())
    return error::make(errc::invalid_config, "unknown workflow stream '" + stream_name + "'", pipeline.file);
  auto store = node_store_for(pipeline, services);
  if (!store.ok()) return std::move(store).err();
  auto s = backend_settings(pipeline);
  auto made = services.get_or_create<directory_stream>(
      "workflow_stream:" + store.value()->data_dir() + ":" + s.backend + ":" + stream_name,
      [&]() -> result<std::shared_ptr<directory_stream>> {
        auto factory = services.find<storage::event_log_factory>("");
        if (!factory) return error::make(errc::internal, "no event-log factory in this process");
        auto stream = factory->make_stream(s, backend_env(store.value(), services), stream_name);
        if (!stream.ok()) return std::move(stream).err();
        return std::make_shared<directory_stream>(directory_stream{std::move(stream).value()});
      });
  if (!made.ok()) return std::move(made).err();
  return made.value()->stream;
}

}  // namespace esflow::stages
