#include "cli/tenants.h"

#include "placement/kv_placement.h"
#include "placement/swarm_constraints.h"
#include "transport/http_server.h"
#include "transport/nats/nats_connection.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <ostream>
#include <thread>

namespace esflow::cli {
namespace {

struct kv_session {
  std::unique_ptr<nats::nats_connection> conn;
  std::unique_ptr<placement::kv_placement> kv;
  ~kv_session() {
    if (kv) kv->stop();
    kv.reset();
    if (conn) conn->close();
  }
};

result<std::unique_ptr<kv_session>> open_kv(const tenants_options& o) {
  if (o.nats_url.empty())
    return error::make(errc::invalid_config,
                       "--nats URL (or ESFLOW_NATS_URL) is required: placement lives in "
                       "the TENANT_PLACEMENT KV bucket");
  auto s = std::make_unique<kv_session>();
  nats::connection_options co;
  co.url = o.nats_url;
  co.name = "esflow-cli";
  auto conn = nats::nats_connection::connect(co);
  if (!conn.ok()) return std::move(conn).err();
  s->conn = std::move(conn).value();
  auto kv = placement::kv_placement::open(*s->conn, {});
  if (!kv.ok()) return std::move(kv).err();
  s->kv = std::move(kv).value();
  if (auto st = s->kv->start_watch(); !st.ok()) return st.err();
  if (auto st = s->kv->wait_initial(std::chrono::seconds(5)); !st.ok()) return st.err();
  return s;
}

// "host:port" of a registration as a client dials it (a wildcard listen
// address is reached on the loopback).
std::pair<std::string, int> dial(const std::string& listen) {
  auto addr = transport::parse_listen_address(listen);
  if (!addr) return {"", 0};
  auto host = addr->first;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  return {host, addr->second};
}

int fail(std::ostream& err, const std::string& what) {
  err << "esflow tenants: " << what << "\n";
  return 1;
}

}  // namespace

int tenants_add_command(const tenants_options& o, const std::string& tenant, const std::string& node,
                        std::ostream& out, std::ostream& err) {
  auto s = open_kv(o);
  if (!s.ok()) return fail(err, s.err().message);
  if (auto st = s.value()->kv->set_tenant(tenant, node); !st.ok()) return fail(err, st.err().message);
  out << "tenant " << tenant << " listed" << (node.empty() ? " (the ring places it)" : " on node " + node)
      << "\n";
  return 0;
}

int tenants_list_command(const tenants_options& o, std::ostream& out, std::ostream& err) {
  auto s = open_kv(o);
  if (!s.ok()) return fail(err, s.err().message);
  auto map = s.value()->kv->current();
  for (const auto& t : map->listed_tenants()) out << t << " " << map->owner(t).value_or("-") << "\n";
  return 0;
}

int tenants_move_command(const tenants_options& o, const std::string& tenant, const std::string& to,
                         std::ostream& out, std::ostream& err) {
  const auto started = std::chrono::steady_clock::now();
  auto s = open_kv(o);
  if (!s.ok()) return fail(err, s.err().message);
  auto& kv = *s.value()->kv;
  auto map = kv.current();
  const auto* target = map->registration(to);
  if (target == nullptr || !target->has_kind("aggregate"))
    return fail(err, "node '" + to + "' is not a registered aggregate node");
  const auto from = map->owner(tenant).value_or("");
  if (from == to) {
    out << "tenant " << tenant << " is already on " << to << "\n";
    return 0;
  }
  // 1. Drain on the old node: it stops admitting the tenant and answers when nothing of it is in flight.
  if (const auto* old = from.empty() ? nullptr : map->registration(from); old != nullptr) {
    auto [host, port] = dial(old->http);
    httplib::Client c(host, port);
    c.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(o.drain_timeout) +
                       std::chrono::seconds(5));
    nlohmann::json body = {{"tenant_id", tenant}, {"timeout_ms", o.drain_timeout.count()}};
    auto res = c.Post("/admin/drain", body.dump(), "application/json");
    if (!res && !o.force)
      return fail(err, "node '" + from + "' (" + old->http +
                           ") did not answer the drain; if it is down, move with --force (its in-flight "
                           "commands were never acknowledged)");
    if (res && res->status != 200)
      return fail(err,
                  "drain on node '" + from + "' answered " + std::to_string(res->status) + ": " + res->body);
    out << "drained " << tenant << " on " << from << (res ? "" : " (node down: --force)") << "\n";
  }
  // 2. Compare-and-set: a concurrent move of the same tenant loses, not both.
  auto rev = kv.tenant_revision(tenant);
  if (!rev.ok()) return fail(err, rev.err().message);
  if (auto moved = kv.move_tenant(tenant, to, rev.value()); !moved.ok())
    return fail(err, "placement of " + tenant + " not changed: " + moved.err().message);
  // 3. The new node subscribes when its watch sees the change.
  auto [host, port] = dial(target->http);
  httplib::Client c(host, port);
  c.set_read_timeout(std::chrono::seconds(2));
  const auto until = std::chrono::steady_clock::now() + o.settle_timeout;
  bool hosted = false;
  while (!hosted && std::chrono::steady_clock::now() < until) {
    if (auto res = c.Get("/admin/placement"); res && res->status == 200) {
      auto j = nlohmann::json::parse(res->body, nullptr, false);
      if (j.is_object() && j.contains("hosted"))
        for (const auto& t : j["hosted"])
          if (t == tenant) hosted = true;
    }
    if (!hosted) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
          .count();
  if (!hosted)
    return fail(err, "placement says " + to + " but it did not report hosting " + tenant + " within " +
                         std::to_string(o.settle_timeout.count()) + " ms (is it running and watching?)");
  out << "moved " << tenant << " from " << (from.empty() ? "-" : from) << " to " << to << " in " << ms
      << " ms\n";
  return 0;
}

int placement_ranges_command(const std::string& ranges, const std::string& service, std::ostream& out,
                             std::ostream& err) {
  result<std::string> text = std::string();
  if (std::filesystem::exists(ranges)) {
    auto parsed = placement::load_ranges_file(ranges);
    if (!parsed.ok()) {
      err << "esflow placement: " << parsed.err().message << "\n";
      return 2;
    }
    text = placement::swarm_constraints(parsed.value(), service);
  } else {
    text = placement::swarm_constraints(ranges, service);
  }
  if (!text.ok()) {
    err << "esflow placement: " << text.err().message << "\n";
    return 2;
  }
  out << text.value();
  return 0;
}

}  // namespace esflow::cli
