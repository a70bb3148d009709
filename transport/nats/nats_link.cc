#include "transport/nats/nats_link.h"

#include "common/service_registry.h"
#include "transport/node_host.h"

namespace esflow::nats {

connection_options node_connection_options(const std::string& url) {
  connection_options o;
  o.url = url;
  o.name = "esflow";
  o.reconnect_wait_min = std::chrono::milliseconds(20);
  o.reconnect_wait_max = std::chrono::milliseconds(500);
  // Open at the disconnect: a command arriving while the link is down is
  // answered unavailable at once, never after a timer (docs/contract.md).
  o.breaker_open_after = std::chrono::milliseconds(0);
  o.ping_interval = std::chrono::milliseconds(1000);
  o.drain_timeout = std::chrono::milliseconds(2000);
  return o;
}

result<std::shared_ptr<nats_link>> nats_link::for_url(esflow::service_registry& services,
                                                      const std::string& url) {
  if (url.empty())
    return error::make(errc::invalid_config,
                       "settings.nats_url is empty: set it (or ESFLOW_NATS_URL / `esflow dev --nats URL`)");
  auto host = services.find<transport::node_host>("");
  return services.get_or_create<nats_link>("nats:" + url, [&]() -> result<std::shared_ptr<nats_link>> {
    auto conn = nats_connection::connect(node_connection_options(url));
    if (!conn.ok()) return std::move(conn).err();
    auto link = std::make_shared<nats_link>();
    link->_conn = std::shared_ptr<nats_connection>(std::move(conn).value());
    if (host) {
      std::weak_ptr<nats_link> weak = link;
      host->add_ready_check("nats", [weak]() -> transport::check_result {
        auto self = weak.lock();
        if (!self) return {false, "NATS link closed"};
        const auto st = self->_conn->link_status();
        if (st.state == link_state::connected) return {true, "connected to " + st.url};
        return {false, "NATS " + std::string(to_string(st.state)) +
                           (st.breaker_open ? " (circuit open)" : "") + ", down for " +
                           std::to_string(st.down_for_ms) + " ms"};
      });
      host->set_info("nats", [weak] {
        auto self = weak.lock();
        return self ? self->status_json() : nlohmann::json::object();
      });
      host->set_info("consumers", [weak] {
        auto self = weak.lock();
        return self ? self->consumers() : nlohmann::json::array();
      });
    }
    return link;
  });
}

void nats_link::add_consumer(std::string name, std::function<nlohmann::json()> provider) {
  std::lock_guard lock(_mu);
  _consumers.emplace_back(std::move(name), std::move(provider));
}

nlohmann::json nats_link::consumers() const {
  std::lock_guard lock(_mu);
  auto out = nlohmann::json::array();
  for (const auto& [name, provider] : _consumers) {
    auto j = provider();
    j["name"] = name;
    out.push_back(std::move(j));
  }
  return out;
}

nlohmann::json nats_link::status_json() const {
  const auto st = _conn->link_status();
  return {{"url", st.url},
          {"state", to_string(st.state)},
          {"breaker_open", st.breaker_open},
          {"server_id", st.server_id},
          {"disconnects", st.disconnects},
          {"reconnects", st.reconnects},
          {"down_for_ms", st.down_for_ms}};
}

}  // namespace esflow::nats
