#pragma once
// A 3-server nats-server cluster with JetStream on loopback: three
// nats_server_fixture processes on free client ports, each with its own
// store dir, `--cluster nats://127.0.0.1:<cluster port>`, `--routes` to the
// other two, a server name and one cluster name. ready() waits (bounded)
// until JetStream answers on every server (a meta leader was elected).
#include "tests/transport/nats/nats_server_fixture.h"

#include <nats/nats.h>

#include <array>
#include <memory>
#include <string>

namespace esflow::nats::testing {

class nats_cluster_fixture {
 public:
  static constexpr int size = 3;

  nats_cluster_fixture() {
    std::array<int, size> cluster_ports{};
    for (auto& p : cluster_ports) p = nats_server_fixture::free_port();
    for (int i = 0; i < size; ++i) {
      _servers[i] = std::make_unique<nats_server_fixture>();
      std::string routes;
      for (int j = 0; j < size; ++j) {
        if (j == i) continue;
        routes +=
            (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(cluster_ports[j]);
      }
      _servers[i]->set_extra_args(
          {"--server_name", "esflow-test-" + std::to_string(i), "--cluster_name", "esflow-test", "--cluster",
           "nats://127.0.0.1:" + std::to_string(cluster_ports[i]), "--routes", routes});
    }
  }

  // Starts all three; true once each accepts connections and JetStream answers.
  bool start(std::chrono::milliseconds within = std::chrono::seconds(30)) {
    for (auto& s : _servers)
      if (!s->start()) return false;
    return wait_jetstream(within);
  }

  nats_server_fixture& server(int i) { return *_servers[static_cast<std::size_t>(i)]; }

  // Every server, comma separated (a client fails over between them).
  std::string urls() const {
    std::string out;
    for (const auto& s : _servers) out += (out.empty() ? "" : ",") + s->url();
    return out;
  }

  // JetStream account info answers through every running server (meta leader up).
  bool wait_jetstream(std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    for (auto& s : _servers) {
      if (!s->running()) continue;
      bool ok = false;
      while (!ok && std::chrono::steady_clock::now() < deadline) {
        ok = jetstream_answers(s->url());
        if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      if (!ok) return false;
    }
    return true;
  }

 private:
  static bool jetstream_answers(const std::string& url) {
    natsConnection* nc = nullptr;
    if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) return false;
    jsCtx* js = nullptr;
    bool ok = false;
    if (natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
      jsAccountInfo* ai = nullptr;
      jsErrCode err = static_cast<jsErrCode>(0);
      jsOptions o;
      jsOptions_Init(&o);
      o.Wait = 1000;
      ok = js_GetAccountInfo(&ai, js, &o, &err) == NATS_OK;
      if (ai != nullptr) jsAccountInfo_Destroy(ai);
      jsCtx_Destroy(js);
    }
    natsConnection_Destroy(nc);
    return ok;
  }

  std::array<std::unique_ptr<nats_server_fixture>, size> _servers;
};

}  // namespace esflow::nats::testing
