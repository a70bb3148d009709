#include "stages/ingest/aggregate_reads.h"

#include "stages/aggregate/aggregate_service.h"

#include <filesystem>

namespace esflow::stages {
namespace {

class service_reads final : public aggregate_reads {
 public:
  explicit service_reads(std::shared_ptr<aggregate::aggregate_service> service)
      : _service(std::move(service)) {}

  result<aggregate_state_view> state(const std::string& tenant, const std::string& type,
                                     const std::string& id) override {
    auto s = _service->get_state(tenant, type, id);
    if (!s.ok()) return std::move(s).err();
    return aggregate_state_view{s->version, std::move(s->state_json)};
  }

  result<aggregate_event_page> events(const std::string& tenant, const std::string& type,
                                      const std::string& id, schemas::version_t after,
                                      std::size_t limit) override {
    auto page = _service->read_events(tenant, type, id, after, limit);
    if (!page.ok()) return std::move(page).err();
    return aggregate_event_page{std::move(page->events), page->next_after};
  }

 private:
  std::shared_ptr<aggregate::aggregate_service> _service;
};

}  // namespace

std::shared_ptr<aggregate_reads> find_aggregate_reads(graph::service_registry& services,
                                                      const std::string& data_dir) {
  if (auto injected = services.find<aggregate_reads>()) return injected;
  // The key aggregate_service::for_stage registers under.
  const auto key = "aggregate:" + std::filesystem::path(data_dir).lexically_normal().string();
  if (auto service = services.find<aggregate::aggregate_service>(key))
    return std::make_shared<service_reads>(service);
  return nullptr;
}

}  // namespace esflow::stages
