// NATS request/reply on tenant.<t>.command.Account.<id> (the subject names
// the tenant; docs/contract.md section 2), answered with a CommandResult.
// Connections are pooled: one per k_clients_per_connection clients.
#include "cli/load/transport.h"
#include "transport/nats/subjects.h"

#include <nats/nats.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace esflow::load {
namespace {

struct nats_conn {
  natsConnection* nc = nullptr;
  ~nats_conn() {
    if (nc != nullptr) natsConnection_Destroy(nc);
  }
};

result<std::shared_ptr<nats_conn>> connect(const std::string& url) {
  natsOptions* opts = nullptr;
  auto s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetURL(opts, url.c_str());
  if (s == NATS_OK) s = natsOptions_SetName(opts, "esflow-load");
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, 5000);
  // Without it nats.c flushes requests from a timer (~1 ms): latency would be the timer's.
  if (s == NATS_OK) s = natsOptions_SetSendAsap(opts, true);
  auto c = std::make_shared<nats_conn>();
  if (s == NATS_OK) s = natsConnection_Connect(&c->nc, opts);
  if (opts != nullptr) natsOptions_Destroy(opts);
  if (s != NATS_OK)
    return error::make(errc::unavailable,
                       "cannot connect to NATS at " + url + ": " + natsStatus_GetText(s) + " (--url)");
  return c;
}

class nats_sender final : public command_sender {
 public:
  nats_sender(std::shared_ptr<nats_conn> conn, std::chrono::milliseconds timeout)
      : _conn(std::move(conn)), _timeout_ms(timeout.count()) {}

  answer send(const load_item& item) override {
    const auto subject = nats::command_subject(item.cmd.tenant, "Account", item.cmd.account_id);
    natsMsg* reply = nullptr;
    const auto s = natsConnection_Request(&reply, _conn->nc, subject.c_str(), item.body.data(),
                                          static_cast<int>(item.body.size()), _timeout_ms);
    if (s == NATS_TIMEOUT) return {outcome::error, "client_timeout"};
    if (s == NATS_NO_RESPONDERS) return {outcome::error, "client_no_responders"};
    if (s != NATS_OK) return {outcome::error, "client_nats_error"};
    auto a = answer_of_json(
        std::string_view(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply))),
        "client_bad_answer");
    natsMsg_Destroy(reply);
    return a;
  }

 private:
  std::shared_ptr<nats_conn> _conn;
  std::int64_t _timeout_ms;
};

class nats_transport final : public transport {
 public:
  nats_transport(std::vector<std::shared_ptr<nats_conn>> pool, std::chrono::milliseconds timeout)
      : _pool(std::move(pool)), _timeout(timeout) {}
  std::unique_ptr<command_sender> sender(int client) override {
    return std::make_unique<nats_sender>(_pool[static_cast<std::size_t>(client) % _pool.size()], _timeout);
  }

 private:
  std::vector<std::shared_ptr<nats_conn>> _pool;
  std::chrono::milliseconds _timeout;
};

}  // namespace

result<std::unique_ptr<transport>> open_nats_transport(const transport_options& o) {
  if (!o.url.starts_with("nats://"))
    return error::make(errc::invalid_config, "--url '" + o.url + "': nats://host:port expected");
  std::vector<std::shared_ptr<nats_conn>> pool;
  const int n = std::max(1, (o.clients + k_clients_per_connection - 1) / k_clients_per_connection);
  for (int i = 0; i < n; ++i) {
    auto c = connect(o.url);
    if (!c.ok()) return c.err();
    pool.push_back(std::move(c).value());
  }
  return std::unique_ptr<transport>(new nats_transport(std::move(pool), o.timeout));
}

}  // namespace esflow::load
