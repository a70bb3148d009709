#include "storage/event_log_factory.h"

#include "storage/embedded_event_log.h"

namespace esflow::storage {

status event_log_factory::add(const event_log_backend& backend) {
  std::lock_guard lock(_mu);
  if (!_backends.emplace(backend.name, backend).second)
    return error::make(errc::invalid_config, "event-log backend '" + backend.name + "' registered twice");
  return {};
}

result<std::shared_ptr<event_log>> event_log_factory::make(const event_log_settings& settings,
                                                           const event_log_env& env) const {
  event_log_maker maker;
  std::string known;
  {
    std::lock_guard lock(_mu);
    auto it = _backends.find(settings.backend);
    if (it != _backends.end()) maker = it->second.make;
    for (const auto& [name, b] : _backends) known += (known.empty() ? "" : ", ") + name;
  }
  if (!maker)
    return error::make(errc::invalid_config,
                       "unknown event_log '" + settings.backend + "' (this build has: " + known + ")",
                       settings.origin);
  if (!env.store) return error::make(errc::internal, "event log without a node store", settings.origin);
  return maker(settings, env);
}

std::vector<const event_log_backend*> event_log_factory::all() const {
  std::lock_guard lock(_mu);
  std::vector<const event_log_backend*> out;
  for (const auto& [name, b] : _backends) out.push_back(&b);
  return out;
}

std::shared_ptr<event_log> owning_log(std::unique_ptr<event_log> log, std::shared_ptr<void> keep) {
  auto* raw = log.release();
  return std::shared_ptr<event_log>(raw, [keep = std::move(keep)](event_log* l) mutable {
    ignore(l->close());
    delete l;
    keep.reset();
  });
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
          }};
}

}  // namespace esflow::storage
