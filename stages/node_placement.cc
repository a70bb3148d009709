#include "stages/node_placement.h"

#include "common/log.h"
#include "common/service_registry.h"
#include "graph/pipeline_spec.h"
#include "stages/node_env.h"
#include "transport/nats/nats_link.h"

#include <httplib.h>

#include <filesystem>

namespace esflow::stages {

std::set<std::string> node_placement::hosted() const {
  std::lock_guard lock(_mu);
  return _hosted;
}

std::uint64_t node_placement::on_hosted(hosted_listener fn) {
  std::lock_guard lock(_mu);
  fn(_hosted);
  const auto id = _next++;
  _listeners.emplace(id, std::move(fn));
  return id;
}

void node_placement::remove_listener(std::uint64_t id) {
  std::lock_guard lock(_mu);
  _listeners.erase(id);
}

node_placement::~node_placement() {
  if (auto host = _host.lock()) host->admission().set_placement(nullptr);
  if (_service) {
    _service->remove_listener(_listener);
    _service->stop();
  }
}

void node_placement::apply(const placement::map_ptr& map) {
  if (!map) return;
  const auto list = map->tenants_hosted_by(_node_id);
  std::set<std::string> now(list.begin(), list.end());
  std::lock_guard lock(_mu);
  if (auto host = _host.lock()) {
    // Moved away while drained (a finished move): the drain has done its
    // job; the tenant is now answered tenant_not_hosted.
    for (const auto& t : host->admission().draining_tenants())
      if (map->owner(t).value_or(_node_id) != _node_id) host->admission().resume(t);
  }
  if (now == _hosted) return;
  _hosted = std::move(now);
  ESFLOW_INFO("placement", "node {} hosts {} listed tenant(s)", _node_id, _hosted.size());
  for (const auto& [id, fn] : _listeners) fn(_hosted);
}

result<std::shared_ptr<node_placement>> node_placement::of(const graph::pipeline_spec& pipeline,
                                                           esflow::service_registry& services) {
  const auto& settings = pipeline.settings;
  const auto node_id = settings.str("node_id");
  if (node_id.empty()) return std::shared_ptr<node_placement>();
  return services.get_or_create<node_placement>(
      "placement", [&]() -> result<std::shared_ptr<node_placement>> {
        std::shared_ptr<node_placement> self(new node_placement());
        self->_node_id = node_id;
        placement::placement_options o;
        o.node_id = node_id;
        o.kinds = {"aggregate"};
        // What others dial: a container listens on 0.0.0.0 but is reached by its service name.
        o.http =
            settings.str("advertise_http").empty() ? settings.str("http") : settings.str("advertise_http");
        o.grpc =
            settings.str("advertise_grpc").empty() ? settings.str("grpc") : settings.str("advertise_grpc");
        o.file = std::filesystem::path(data_dir_of(pipeline)) / "placement.json";
        auto& link = self->_link;
        if (const auto url = settings.str("nats_url"); !url.empty()) {
          // KV unreachable is not fatal: placement_service falls back to the file.
          auto l = nats::nats_link::for_url(services, url);
          if (l.ok()) {
            link = l.value();
            o.nats = &link->connection();
          } else {
            ESFLOW_WARN("placement", "NATS at {} unreachable ({}); placement from {}", url, l.err().message,
                        o.file.string());
          }
        }
        auto svc = placement::placement_service::start(std::move(o));
        if (!svc.ok()) return std::move(svc).err();
        self->_service = std::move(svc).value();
        auto host = services.find<transport::node_host>("");
        self->_host = host;
        if (host) {
          host->admission().set_placement([svc = self->_service.get(), me = node_id](
                                              const std::string& tenant) -> std::optional<std::string> {
            auto owner = svc->current()->owner(tenant);
            if (!owner || *owner == me) return std::nullopt;
            return owner;
          });
          host->add_reload_hook(
              "placement", [w = std::weak_ptr<node_placement>(self)]() -> result<std::string> {
                auto p = w.lock();
                if (!p) return std::string("gone");
                if (auto st = p->_service->reload(); !st.ok()) return st.err();
                return "source " + std::string(placement::to_string(p->_service->source())) + ", " +
                       std::to_string(p->hosted().size()) + " hosted tenant(s)";
              });
          host->set_info("placement", [w = std::weak_ptr<node_placement>(self)]() -> nlohmann::json {
            auto p = w.lock();
            if (!p) return nullptr;
            return {{"node", p->_node_id},
                    {"source", std::string(placement::to_string(p->_service->source()))},
                    {"hosted", p->hosted()}};
          });
          host->http().routes().Get("/admin/placement", [w = std::weak_ptr<node_placement>(self)](
                                                            const httplib::Request&, httplib::Response& res) {
            auto p = w.lock();
            nlohmann::json body = nullptr;
            if (p)
              body = {{"node", p->_node_id},
                      {"source", std::string(placement::to_string(p->_service->source()))},
                      {"hosted", p->hosted()},
                      {"map", p->_service->current()->json()}};
            res.status = p ? 200 : 503;
            res.set_content(body.dump(), "application/json");
          });
        }
        self->_listener =
            self->_service->add_listener([w = std::weak_ptr<node_placement>(self)](placement::map_ptr now) {
              if (auto p = w.lock()) p->apply(now);
            });
        self->apply(self->_service->current());
        return self;
      });
}

}  // namespace esflow::stages
