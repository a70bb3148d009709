#pragma once
// event_log_factory: event-log backends registered by name ("embedded",
// "jetstream") and built from settings on a node store. The host registers
// the backends this binary links (one list); node kinds ask for "the event
// log of this data directory" and never name a backend's type.
//
// Control plane only: make() may block (a backend connects, creates streams,
// runs its self-checks). The log it returns is shared by every node kind of
// the process on that directory; destroying the last reference closes the
// log, then lets go of the store (in that order).
//
// NOTE: add() and make() are thread-safe.
#include "common/result.h"
#include "common/service_registry.h"
#include "storage/event_log.h"
#include "storage/node_store.h"
#include "storage/workflow_stream.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
}

namespace esflow::storage {

struct event_log_settings {
  std::string backend = "embedded";
  std::string nats_url;  // jetstream: the servers (comma-separated)
  std::chrono::milliseconds dedupe_ttl = std::chrono::hours(24);
  int stream_replicas = 1;  // jetstream: replicas of streams it creates
  std::string origin;       // the pipeline file asking (error context)
};

// What a backend may use from the process that hosts it.
struct event_log_env {
  std::shared_ptr<node_store> store;
  service_registry* services = nullptr;  // shared objects, e.g. the NATS link of a URL
  // Adds figures to the node's /metrics, collected at scrape time (null: no host).
  std::function<void(std::shared_ptr<prometheus::Collectable>)> add_metrics;
  // Publishes a key of the node's /info (null: no host, e.g. a tool).
  std::function<void(const std::string& key, std::function<nlohmann::json()> provider)> set_info;
};

using event_log_maker =
    std::function<result<std::shared_ptr<event_log>>(const event_log_settings&, const event_log_env&)>;

// A backend's workflow stream (storage/workflow_stream.h) of `stream`
// (WORKFLOW_COMMANDS / WORKFLOW_EVENTS), on the same store or NATS link as
// its event log. Each call opens a new object: callers share one per
// (directory, backend, stream) (stages::workflow_stream_for).
using workflow_stream_maker = std::function<result<std::shared_ptr<workflow_stream>>(
    const event_log_settings&, const event_log_env&, const std::string& stream)>;

struct event_log_backend {
  std::string name;
  std::string description;
  event_log_maker make;
  workflow_stream_maker make_stream;  // null: the backend has no workflow streams
};

class event_log_factory {
 public:
  // A second backend with the same name is invalid_config.
  status add(const event_log_backend& backend);
  // invalid_config naming the known backends when `settings.backend` is unknown.
  result<std::shared_ptr<event_log>> make(const event_log_settings& settings, const event_log_env& env) const;
  // The backend's workflow stream `stream`; invalid_config as make(), or when
  // the backend has none.
  result<std::shared_ptr<workflow_stream>> make_stream(const event_log_settings& settings,
                                                       const event_log_env& env,
                                                       const std::string& stream) const;
  std::vector<const event_log_backend*> all() const;

 private:
  result<event_log_backend> find(const event_log_settings& settings, const event_log_env& env) const;

  mutable std::mutex _mu;
  std::map<std::string, event_log_backend> _backends;
};

// The embedded (RocksDB) backend.
event_log_backend embedded_backend();

// Publishes /info "storage" (data directory, durability, backend) when the
// env has a host; every backend calls it.
void publish_storage_info(const event_log_env& env, std::string_view backend);

// Wraps a backend's log so that the last reference closes it and then
// releases `keep` (the store, a connection) — in that order.
std::shared_ptr<event_log> owning_log(std::unique_ptr<event_log> log, std::shared_ptr<void> keep);
// The same for a workflow stream.
std::shared_ptr<workflow_stream> owning_stream(std::unique_ptr<workflow_stream> stream,
                                               std::shared_ptr<void> keep);

}  // namespace esflow::storage
