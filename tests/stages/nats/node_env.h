#pragma once
// An aggregate node on the JetStream backbone, served in-process exactly as
// `esflow run` wires it (cli::serve_nodes), plus a NATS client to drive it:
// requests on tenant.<t>.command.<type>.<id>, the AGGREGATE_EVENTS stream
// read back in full for the exactly-once checks.
#include "cli/app.h"
#include "tests/storage/temp_dir.h"
#include "tests/transport/nats/nats_server_fixture.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <nats/nats.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>

namespace esflow::nats::testing {

using nlohmann::json;
using namespace std::chrono_literals;

using temp_path = storage::testing::temp_dir;

inline std::string replace_all(std::string s, const std::string& what, const std::string& with) {
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
    s.replace(pos, what.size(), with);
  return s;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::string programs_dir() { return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs/"; }

// The shipped pipelines/aggregate-jetstream.yaml with programs resolved from the source tree.
inline std::string shipped_jetstream_pipeline(const temp_path& dir) {
  auto yaml = read_text(std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate-jetstream.yaml");
  yaml = replace_all(yaml, "program: programs/", "program: " + programs_dir());
  return dir.write("aggregate-jetstream.yaml", yaml);
}

// Serves pipeline files with ESFLOW_DATA_DIR / ESFLOW_NATS_URL set (relaxed
// RocksDB durability: the event log is JetStream's; tests run faster).
inline std::shared_ptr<cli::served_nodes> serve(const std::vector<std::string>& files,
                                                const std::string& data_dir, const std::string& nats_url,
                                                const graph::kind_registry* registry = nullptr) {
  ::setenv("ESFLOW_DATA_DIR", data_dir.c_str(), 1);
  ::setenv("ESFLOW_NATS_URL", nats_url.c_str(), 1);
  ::setenv("ESFLOW_DURABILITY", "relaxed", 1);
  cli::serve_options o;
  o.registry = registry;
  auto served = cli::serve_nodes(files, o);
  if (!served.ok()) {
    ADD_FAILURE() << served.err().to_string();
    return nullptr;
  }
  // Sources subscribe on their own threads: wait for /ready (bounded).
  auto& host = cli::served_host(*served.value());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!host.ready().ok && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!host.ready().ok) ADD_FAILURE() << "node not ready: " << host.ready().detail;
  return std::move(served).value();
}

template <class pred>
bool eventually(pred p, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (p()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return p();
}

// A plain nats.c client (its own connection, reconnecting forever).
class client {
 public:
  explicit client(const std::string& urls) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    std::vector<std::string> servers;
    for (std::size_t start = 0; start <= urls.size();) {
      auto end = urls.find(',', start);
      if (end == std::string::npos) end = urls.size();
      servers.push_back(urls.substr(start, end - start));
      start = end + 1;
    }
    std::vector<const char*> ptrs;
    for (const auto& s : servers) ptrs.push_back(s.c_str());
    natsOptions_SetServers(o, ptrs.data(), static_cast<int>(ptrs.size()));
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 50);
    natsOptions_SetSendAsap(o, true);
    natsOptions_SetFailRequestsOnDisconnect(o, true);
    natsOptions_SetReconnectBufSize(o, 8 << 20);
    const auto s = natsConnection_Connect(&_nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
      ADD_FAILURE() << "client connect to " << urls << ": " << natsStatus_GetText(s);
      _nc = nullptr;
    }
  }
  ~client() {
    if (_nc != nullptr) natsConnection_Destroy(_nc);
  }
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  struct reply {
    natsStatus status = NATS_ERR;  // of the request itself (NATS_TIMEOUT, NATS_NO_RESPONDERS, ...)
    json body;
    std::map<std::string, std::string> headers;
  };

  reply request(const std::string& subject, const std::string& body,
                std::map<std::string, std::string> headers = {}, std::int64_t timeout_ms = 5000) {
    reply out;
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    for (const auto& [k, v] : headers) natsMsgHeader_Set(msg, k.c_str(), v.c_str());
    natsMsg* answer = nullptr;
    out.status = natsConnection_RequestMsg(&answer, _nc, msg, timeout_ms);
    natsMsg_Destroy(msg);
    if (out.status != NATS_OK) return out;
    out.body = json::parse(
        std::string(natsMsg_GetData(answer), static_cast<std::size_t>(natsMsg_GetDataLength(answer))),
        nullptr, false);
    const char** keys = nullptr;
    int count = 0;
    if (natsMsgHeader_Keys(answer, &keys, &count) == NATS_OK) {
      for (int i = 0; i < count; ++i) {
        const char* v = nullptr;
        if (natsMsgHeader_Get(answer, keys[i], &v) == NATS_OK && v != nullptr) out.headers[keys[i]] = v;
      }
      free(static_cast<void*>(keys));
    }
    natsMsg_Destroy(answer);
    return out;
  }

  void publish(const std::string& subject, const std::string& body) {
    ASSERT_EQ(natsConnection_PublishString(_nc, subject.c_str(), body.c_str()), NATS_OK);
    natsConnection_Flush(_nc);
  }

  natsConnection* raw() const { return _nc; }

 private:
  natsConnection* _nc = nullptr;
};

// One commit of AGGREGATE_EVENTS as read back.
struct stored_commit {
  std::uint64_t seq = 0;
  std::string tenant, aggregate_id, command_id;
  std::uint64_t first_version = 0;
  std::size_t events = 0;
};

// Every message of the stream, in order (an ephemeral pull consumer, no acks).
inline std::vector<stored_commit> read_stream(natsConnection* nc, const char* stream = "AGGREGATE_EVENTS") {
  std::vector<stored_commit> out;
  jsCtx* js = nullptr;
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  if (natsConnection_JetStream(&js, nc, &jo) != NATS_OK) return out;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream;
  so.Config.AckPolicy = js_AckNone;
  so.Config.DeliverPolicy = js_DeliverAll;
  natsSubscription* sub = nullptr;
  jsErrCode err = static_cast<jsErrCode>(0);
  // Bounded retries: right after a server loss the client may still be reconnecting.
  natsStatus st = NATS_ERR;
  for (int attempt = 0; attempt < 50; ++attempt) {
    st = js_PullSubscribe(&sub, js, "tenant.*.aggregate.>", nullptr, &jo, &so, &err);
    if (st == NATS_OK) break;
    std::this_thread::sleep_for(200ms);
  }
  if (st != NATS_OK) {
    ADD_FAILURE() << "pull subscribe on " << stream << " failed: " << nats_GetLastError(nullptr);
    jsCtx_Destroy(js);
    return out;
  }
  // Up to the stream's last sequence as of now (bounded: a few empty fetches end it).
  std::uint64_t last = 0;
  jsStreamInfo* si = nullptr;
  if (js_GetStreamInfo(&si, js, stream, &jo, &err) == NATS_OK) {
    last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
  }
  for (int empty = 0; empty < 3 && (out.empty() ? last > 0 : out.back().seq < last);) {
    natsMsgList list{};
    const auto s = natsSubscription_Fetch(&list, sub, 1000, 1000, &err);
    if (s != NATS_OK || list.Count == 0) {
      ++empty;
      natsMsgList_Destroy(&list);
      continue;
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = list.Msgs[i];
      stored_commit c;
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        c.seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
      }
      auto j =
          json::parse(std::string(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m))),
                      nullptr, false);
      if (j.is_object()) {
        c.tenant = j.value("tenant_id", "");
        c.aggregate_id = j.value("aggregate_id", "");
        c.command_id = j.value("command_id", "");
        c.first_version = j.value("first_version", std::uint64_t{0});
        c.events = j.contains("events") ? j["events"].size() : 0;
      }
      out.push_back(std::move(c));
    }
    natsMsgList_Destroy(&list);
  }
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  return out;
}

inline std::string command_body(const std::string& id, const json& payload,
                                const std::string& command_id = {}) {
  json body = {{"aggregate_type", "Account"}, {"aggregate_id", id}, {"payload", payload}};
  if (!command_id.empty()) body["command_id"] = command_id;
  return body.dump();
}

inline json open_account(std::int64_t n) { return {{"type", "open_account"}, {"initial_balance", n}}; }
inline json deposit(std::int64_t n) { return {{"type", "deposit"}, {"amount", n}}; }
inline json withdraw(std::int64_t n) { return {{"type", "withdraw"}, {"amount", n}}; }

}  // namespace esflow::nats::testing
