#pragma once
// Helpers of the runner guarantee tests: a node from any list of pipeline
// files (shipped or written into the test's temp dir), the data directory's
// store shared with the nodes of this process (node_store::shared: reads while
// they run, checkpoint resets while they are stopped, injected write
// failures), and readers of the event log and the workflow streams (only
// while no node of the directory runs: one writer per log).
#include "cli/app.h"
#include "storage/embedded_event_log.h"
#include "storage/embedded_workflow_stream.h"
#include "storage/keys.h"
#include "storage/keyspace.h"
#include "storage/node_store.h"
#include "tests/stages/ingest/http_util.h"
#include "tests/stages/runner/hook_receiver.h"
#include "tests/stages/runner/runner_node.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace esflow::runner_test {

// Polls until pred holds (bounded: `within`, 10 ms steps).
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds within = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The directory's store, shared with this process's nodes (the same durability as the shipped files).
inline std::shared_ptr<storage::node_store> shared_store(const std::string& data_dir,
                                                         std::function<bool()> inject = {}) {
  auto s = storage::node_store::shared(
      {.data_dir = data_dir, .mode = storage::durability::fsync, .inject_write_failure = std::move(inject)});
  EXPECT_TRUE(s.ok()) << s.err().to_string();
  return s.ok() ? s.value() : nullptr;
}

inline std::uint64_t checkpoint(storage::node_store& s, const std::string& name) {
  auto v = s.checkpoints().get({}, name);
  return v.ok() ? v.value().value_or(0) : 0;
}
inline void set_checkpoint(storage::node_store& s, const std::string& name, std::uint64_t value) {
  auto ws = s.begin();
  s.checkpoints().put(ws, {}, name, value);
  ASSERT_TRUE(s.commit(ws).ok());
}

inline std::vector<storage::outbox_item> outbox(storage::node_store& s) {
  auto page = s.outbox().list({}, 10000);
  EXPECT_TRUE(page.ok());
  return page.ok() ? page.value() : std::vector<storage::outbox_item>{};
}
inline std::vector<storage::schedule_item> schedules(storage::node_store& s) {
  auto due = s.schedules().due(~std::uint64_t{0}, 10000);
  EXPECT_TRUE(due.ok());
  return due.ok() ? due.value() : std::vector<storage::schedule_item>{};
}
inline json saga_record(storage::node_store& s, const std::string& tenant, const std::string& saga,
                        const std::string& id) {
  auto r = s.sagas().get(tenant, saga, id);
  if (!r.ok() || !r.value()) return json();
  return json::parse(*r.value(), nullptr, false);
}
inline bool marker_stored(storage::node_store& s, const std::string& tenant, const std::string& marker) {
  storage::keyspace space(s.database(), storage::cf::dedupe);
  auto v = space.get(storage::keys::dedupe(tenant, marker));
  return v.ok() && v.value().has_value();
}

// Everything a log or stream holds, page by page (no node of the directory may run).
template <class Reader>
auto read_all(Reader& reader) {
  std::decay_t<decltype(reader.read_from(0, 1).value())> all;
  storage::position_t after = 0;
  for (int i = 0; i < 10000; ++i) {
    auto page = reader.read_from(after, 1000);
    EXPECT_TRUE(page.ok());
    if (!page.ok() || page->empty()) break;
    for (auto& x : page.value()) all.push_back(std::move(x));
    after = all.back().position;
  }
  EXPECT_TRUE(reader.close().ok());
  return all;
}
inline std::vector<storage::positioned_commit> log_commits(storage::node_store& s) {
  auto log = storage::embedded_event_log::open(s.database());
  EXPECT_TRUE(log.ok());
  return log.ok() ? read_all(*log.value()) : std::vector<storage::positioned_commit>{};
}
// command id -> commits carrying it.
inline std::map<std::string, int> commits_per_command(storage::node_store& s) {
  std::map<std::string, int> n;
  for (const auto& c : log_commits(s)) ++n[c.commit.command_id];
  return n;
}

inline std::vector<storage::stream_message> stream_messages(storage::node_store& s, const std::string& name) {
  auto stream = storage::embedded_workflow_stream::open(s.database(), name);
  EXPECT_TRUE(stream.ok());
  return stream.ok() ? read_all(*stream.value()) : std::vector<storage::stream_message>{};
}
inline int count_subject(const std::vector<storage::stream_message>& msgs, const std::string& part) {
  int n = 0;
  for (const auto& m : msgs) n += m.subject.find(part) != std::string::npos ? 1 : 0;
  return n;
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// The settings of the test pipelines written here: a free loopback port, the
// embedded log, fsync.
inline constexpr const char* k_test_settings = R"(settings:
  http: 127.0.0.1:0
  data_dir: ./data
  durability: fsync
  event_log: embedded
  tenancy: multi
)";

// A pipeline of the saga path alone (follow -> ... -> commit -> ack) with one
// saga `saga` (program `program`, next to the file) triggered by Order's
// `noted` events, by aggregate id; `load_params` are added to saga.load.
// Written to dir/<pipeline>.yaml; the file's path.
inline std::string saga_path_pipeline(const std::filesystem::path& dir, const std::string& pipeline,
                                      const std::string& saga, const std::string& program,
                                      const std::string& load_params = {}) {
  const auto p = dir / (pipeline + ".yaml");
  write_file(p, "pipeline: " + pipeline + "\n" + k_test_settings + R"(sagas:
  )" + saga + R"(:
    program: )" + program +
                    R"(
    triggers:
      - { aggregate_type: Order, events: [noted] }
    correlate_by: aggregate_id
stages:
  follow: { kind: saga.follow, poll: 10ms }
  tenant: { kind: tenant.gate, key: message, concurrency: 4 }
  dedupe: { kind: saga.dedupe, key: message, concurrency: 4 }
  load:   { kind: saga.load, key: message, concurrency: 4)" +
                    (load_params.empty() ? std::string() : ", " + load_params) + R"( }
  run:    { kind: saga.run, key: message, concurrency: 4 }
  commit: { kind: saga.commit, key: message }
  ack:    { kind: ack }
flow:
  - follow -> tenant -> dedupe -> load -> run -> commit -> ack
  - "tenant.error -> ack"
  - "dedupe.error -> ack"
  - "load.error -> ack"
  - "run.error -> ack"
  - "commit.error -> ack"
)");
  return p.string();
}

// runner-saga.yaml as shipped with `params` added to its outbox.scan, written
// to dir/name (program paths made absolute); the file's path.
inline std::string saga_pipeline_with_scan(const std::filesystem::path& dir, const std::string& name,
                                           const std::string& params) {
  std::ifstream in(pipeline("runner-saga.yaml"));
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string scan = "kind: outbox.scan";
  const auto at_scan = yaml.find(scan);
  EXPECT_NE(at_scan, std::string::npos) << "runner-saga.yaml's outbox.scan line";
  if (at_scan != std::string::npos) yaml.replace(at_scan, scan.size(), scan + ", " + params);
  const std::string root = std::string(ESFLOW_SOURCE_DIR) + "/pipelines/";
  for (auto at = yaml.find("programs/"); at != std::string::npos; at = yaml.find("programs/", at + 1)) {
    yaml.insert(at, root);
    at += root.size();
  }
  const auto file = (dir / name).string();
  std::ofstream(file) << yaml;
  return file;
}

// runner-effect.yaml as shipped, but `notify` POSTs to `url` (fast retries).
inline std::string effect_pipeline(const std::filesystem::path& dir, const std::string& url) {
  const auto p = dir / "runner-effect.yaml";
  write_file(
      p,
      R"(pipeline: runner-effect
)" + std::string(k_test_settings) +
          R"(  max_in_flight: 1024
effects:
  notify: { provider: http, url: ")" +
          url +
          R"(", timeout: 2s, retries: 3, backoff: { min: 20ms, max: 50ms }, breaker: { failures: 100, open_for: 1s } }
stages:
  follow:  { kind: effect.follow, batch: 256, poll: 20ms }
  tenant:  { kind: tenant.gate, key: message, concurrency: 4 }
  gate:    { kind: effect.gate, key: message, concurrency: 4 }
  execute: { kind: effect.execute, key: message }
  publish: { kind: effect.publish, key: message }
  done:    { kind: effect.done, key: message }
  ack:     { kind: ack }
flow:
  - follow -> tenant -> gate -> execute -> publish -> done -> ack
  - "tenant.error -> ack"
  - "gate.error -> ack"
  - "execute.error -> ack"
  - "publish.error -> ack"
  - "done.error -> ack"
)");
  return p.string();
}

// pipelines/runner-effect-jetstream.yaml as shipped (its durable consumer
// name included: replicas share it), but `notify` POSTs to `url`; empty when
// the shipped file no longer has the line this replaces.
inline std::string jetstream_effect_pipeline(const std::filesystem::path& dir, const std::string& url) {
  std::ifstream in(pipeline("runner-effect-jetstream.yaml"));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string shipped = "\n  notify: { provider: log }\n";
  const auto at = text.find(shipped);
  if (at == std::string::npos) return {};
  text.replace(at, shipped.size(),
               "\n  notify: { provider: http, url: \"" + url +
                   "\", timeout: 2s, retries: 3, backoff: { min: 20ms, max: 50ms }, "
                   "breaker: { failures: 100, open_for: 1s } }\n");
  const auto p = dir / "runner-effect-jetstream.yaml";
  write_file(p, text);
  return p.string();
}

using runner_hooks::calls_per_key;
using hook_receiver = runner_hooks::receiver;

}  // namespace esflow::runner_test
