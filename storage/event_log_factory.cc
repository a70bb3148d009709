#include "storage/event_log_factory.h"

#include "storage/embedded_event_log.h"
#include "storage/embedded_workflow_stream.h"

#include <optional>

namespace esflow::storage {

status event_log_factory::add(const event_log_backend& backend) {
  std::lock_guard lock(_mu);
  if (!_backends.emplace(backend.name, backend).second)
    return error::make(errc::invalid_config, "event-log backend '" + backend.name + "' registered twice");
  return {};
}

result<event_log_backend> event_log_factory::find(const event_log_settings& settings,
                                                  const event_log_env& env) const {
  std::optional<event_log_backend> found;
  std::string known;
  {
    std::lock_guard lock(_mu);
    auto it = _backends.find(settings.backend);
    if (it != _backends.end()) found = it->second;
    for (const auto& [name, b] : _backends) known += (known.empty() ? "" : ", ") + name;
  }
  if (!found)
    return error::make(errc::invalid_config,
                       "unknown event_log '" + settings.backend + "' (this build has: " + known + ")",
                       settings.origin);
  if (!env.store) return error::make(errc::internal, "event log without a node store", settings.origin);
  return std::move(*found);
}

result<std::shared_ptr<event_log>> event_log_factory::make(const event_log_settings& settings,
                                                           const event_log_env& env) const {
  auto backend = find(settings, env);
  if (!backend.ok()) return std::move(backend).err();
  return backend->make(settings, env);
}

result<std::shared_ptr<workflow_stream>> event_log_factory::make_stream(const event_log_settings& settings,
                                                                        const event_log_env& env,
                                                                        const std::string& stream) const {
  auto backend = find(settings, env);
  if (!backend.ok()) return std::move(backend).err();
  if (!backend->make_stream)
    return error::make(errc::invalid_config, "event_log '" + settings.backend + "' has no workflow streams",
                       settings.origin);
  return backend->make_stream(settings, env, stream);
}

std::vector<const event_log_backend*> event_log_factory::all() const {
  std::lock_guard lock(_mu);
  std::vector<const event_log_backend*> out;
  for (const auto& [name, b] : _backends) out.push_back(&b);
  return out;
}

namespace {

// The last reference closes the object, deletes it, then releases keep.
template <class T>
std::shared_ptr<T> owning(std::unique_ptr<T> object, std::shared_ptr<void> keep) {
  auto* raw = object.release();
  return std::shared_ptr<T>(raw, [keep = std::move(keep)](T* o) mutable {
    ignore(o->close());
    delete o;
    keep.reset();
  });
}

}  // namespace

std::shared_ptr<event_log> owning_log(std::unique_ptr<event_log> log, std::shared_ptr<void> keep) {
  return owning(std::move(log), std::move(keep));
}

std::shared_ptr<workflow_stream> owning_stream(std::unique_ptr<workflow_stream> stream,
                                               std::shared_ptr<void> keep) {
  return owning(std::move(stream), std::move(keep));
}

void publish_storage_info(const event_log_env& env, std::string_view backend) {
  if (!env.set_info) return;
  std::weak_ptr<node_store> weak = env.store;
  env.set_info("storage", [weak, name = std::string(backend)] {
    auto store = weak.lock();
    if (!store) return nlohmann::json::object();
    return nlohmann::json{
        {"data_dir", store->data_dir()}, {"durability", to_string(store->mode())}, {"event_log", name}};
  });
}

event_log_backend embedded_backend() {
  return {"embedded", "RocksDB in the data directory: one process, group commit (esflow dev, tests)",
          [](const event_log_settings& s, const event_log_env& env) -> result<std::shared_ptr<event_log>> {
            embedded_options o;
            o.dedupe_ttl = s.dedupe_ttl;
            auto log = embedded_event_log::open(env.store->database(), o);
            if (!log.ok()) return std::move(log).err();
            publish_storage_info(env, "embedded");
            return owning_log(std::move(log).value(), env.store);
          },
          [](const event_log_settings&, const event_log_env& env,
             const std::string& stream) -> result<std::shared_ptr<workflow_stream>> {
            // The duplicate window stays JetStream's default (2 min): a
            // workflow msg id is a retry key, not a command id.
            auto opened = embedded_workflow_stream::open(env.store->database(), stream);
            if (!opened.ok()) return std::move(opened).err();
            return owning_stream(std::move(opened).value(), env.store);
          }};
}

}  // namespace esflow::storage
