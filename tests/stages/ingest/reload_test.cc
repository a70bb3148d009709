// POST /admin/reload on a running node (docs/operations.md "Reload"): a
// changed program file is used by the next commands while commands keep
// flowing (none dropped, every one answered); a program that does not
// compile is refused with its file and line and the running one stays.
// The node runs copies of the shipped aggregate.yaml and its programs in a
// temporary directory (the shipped files are never changed).
#include "cli/app.h"
#include "tests/stages/ingest/http_util.h"
#include "transport/node_host.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace esflow {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

class reload_test : public ::testing::Test {
 protected:
  void SetUp() override { start({}); }
  void start(const std::string& node_id) {
    const fs::path src = fs::path(ESFLOW_SOURCE_DIR) / "pipelines";
    fs::create_directories(_dir.path() / "programs");
    if (fs::exists(_dir.path() / "aggregate.yaml")) return restart(node_id);
    fs::copy_file(src / "aggregate.yaml", _dir.path() / "aggregate.yaml");
    for (const auto* p : {"account.lua", "transfer.lua", "transfer_saga.lua"})
      fs::copy_file(src / "programs" / p, _dir.path() / "programs" / p);
    fs::copy_file(src / "runner-saga.yaml", _dir.path() / "runner-saga.yaml");
    restart(node_id);
  }
  void restart(const std::string& node_id) {
    _http.reset();
    _served.reset();
    cli::serve_options o;
    o.overrides.data_dir = (_dir.path() / "data").string();
    o.overrides.http = "127.0.0.1:0";
    if (!node_id.empty()) o.overrides.node_id = node_id;
    auto served = cli::serve_nodes(
        {(_dir.path() / "aggregate.yaml").string(), (_dir.path() / "runner-saga.yaml").string()}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    auto& host = cli::served_host(*_served);
    for (int i = 0; i < 3000 && !host.ready().ok; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(host.ready().ok) << host.ready().detail;
    _http = std::make_unique<httplib::Client>(cli::served_url(*_served));
    _http->set_read_timeout(30, 0);
  }
  void TearDown() override {
    _http.reset();
    _served.reset();
  }

  json send(const std::string& id, const json& payload) {
    json body = {{"aggregate_type", "Account"}, {"aggregate_id", id}, {"payload", payload}};
    auto r = _http->Post("/v1/commands", {{"x-tenant-id", "acme"}}, body.dump(), "application/json");
    return r ? json::parse(r->body) : json();
  }
  std::pair<int, json> reload() {
    auto r = _http->Post("/admin/reload", "", "text/plain");
    if (!r) return {0, nullptr};
    return {r->status, json::parse(r->body)};
  }

  http_test::temp_dir _dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _http;
};

TEST_F(reload_test, a_changed_program_serves_the_next_commands_and_a_broken_one_is_refused) {
  const auto program = _dir.path() / "programs" / "account.lua";
  ASSERT_EQ(send("acc-1", {{"type", "open_account"}, {"initial_balance", 0}}).value("status", ""),
            "accepted");
  EXPECT_EQ(send("acc-1", {{"type", "deposit"}, {"amount", 5000}}).value("status", ""), "accepted");

  // Unchanged files: nothing to swap.
  auto [same_status, same] = reload();
  EXPECT_EQ(same_status, 200) << same.dump();
  EXPECT_EQ(same["reloaded"].value("programs", ""), "unchanged") << same.dump();

  // A lower MAX: deposits above it become invalid_amount, while a steady
  // stream of small deposits on another account keeps being answered.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, accepted{0};
  ASSERT_EQ(send("acc-2", {{"type", "open_account"}, {"initial_balance", 0}}).value("status", ""),
            "accepted");
  std::thread load([&] {
    httplib::Client c(cli::served_url(*_served));
    for (int i = 0; i < 20000 && !stop.load(); ++i) {
      json body = {{"aggregate_type", "Account"},
                   {"aggregate_id", "acc-2"},
                   {"payload", {{"type", "deposit"}, {"amount", 1}}}};
      auto r = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body.dump(), "application/json");
      if (!r) continue;
      answered.fetch_add(1);
      if (json::parse(r->body).value("status", "") == "accepted") accepted.fetch_add(1);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto text = read_file(program);
  const std::string max_line = "local MAX = 9007199254740991";
  ASSERT_NE(text.find(max_line), std::string::npos);
  write_file(program, std::string(text).replace(text.find(max_line), max_line.size(), "local MAX = 1000000"));
  auto [status, body] = reload();
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["reloaded"].value("programs", ""), "reloaded Account") << body.dump();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  load.join();
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(accepted.load(), answered.load()) << "no command was dropped or refused across the reload";
  auto big = send("acc-1", {{"type", "deposit"}, {"amount", 2000000}});
  EXPECT_EQ(big.value("code", ""), "invalid_amount") << big.dump();

  // A program that does not compile: refused with its file and line; the
  // running program (MAX 1000000) stays.
  write_file(program, "local function broken(\n  return 1\nend\n");
  auto [bad_status, bad] = reload();
  EXPECT_EQ(bad_status, 422) << bad.dump();
  const auto why = bad["failed"].value("programs", "");
  EXPECT_NE(why.find("account.lua"), std::string::npos) << why;
  EXPECT_NE(why.find("no program was swapped"), std::string::npos) << why;
  EXPECT_EQ(send("acc-1", {{"type", "deposit"}, {"amount", 10}}).value("status", ""), "accepted");
  EXPECT_EQ(send("acc-1", {{"type", "deposit"}, {"amount", 2000000}}).value("code", ""), "invalid_amount");
  // /info names the program's current hash.
  auto info = _http->Get("/info");
  ASSERT_TRUE(info);
  bool listed = false;
  const auto info_json = json::parse(info->body);
  for (const auto& p : info_json["programs"])
    if (p.value("name", "") == "Account") listed = !p.value("hash", "").empty();
  EXPECT_TRUE(listed);
}

// The runner's saga programs reload the same way: all or none.
TEST_F(reload_test, saga_programs_reload_with_the_process_and_a_broken_one_is_refused) {
  const auto program = _dir.path() / "programs" / "transfer_saga.lua";
  const auto text = read_file(program);
  write_file(program, text + "\n-- reloaded\n");
  auto [status, body] = reload();
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["reloaded"].value("sagas:runner", ""), "reloaded Transfer") << body.dump();
  write_file(program, "function on_event(state, input\n");
  auto [bad_status, bad] = reload();
  EXPECT_EQ(bad_status, 422) << bad.dump();
  const auto why = bad["failed"].value("sagas:runner", "");
  EXPECT_NE(why.find("transfer_saga.lua"), std::string::npos) << why;
  EXPECT_NE(why.find("no program was swapped"), std::string::npos) << why;
  write_file(program, "local x = 1\n");
  auto [none_status, none] = reload();
  EXPECT_EQ(none_status, 422) << none.dump();
  EXPECT_NE(none["failed"].value("sagas:runner", "").find("on_event"), std::string::npos) << none.dump();
}

// Placement from the file (no NATS): a reload applies an edited file without
// a restart (docs/placement.md).
TEST_F(reload_test, placement_from_the_file_is_applied_by_a_reload) {
  const auto file = _dir.path() / "data" / "placement.json";
  auto placement = [&](const std::string& owner) {
    json reg = {
        {"kinds", {"aggregate"}}, {"http", ""}, {"grpc", ""}, {"updated", "2026-12-05T00:00:00.000Z"}};
    json a = reg, b = reg;
    a["node"] = "agg-1";
    b["node"] = "agg-2";
    write_file(file, json({{"nodes", {{"agg-1", a}, {"agg-2", b}}}, {"tenants", {{"acme", owner}}}}).dump());
  };
  placement("agg-2");
  restart("agg-1");
  ASSERT_FALSE(HasFatalFailure());
  auto refused = send("acc-1", {{"type", "open_account"}, {"initial_balance", 0}});
  EXPECT_EQ(refused.value("code", ""), "tenant_not_hosted") << refused.dump();
  EXPECT_EQ(refused.value("node", ""), "agg-2");
  placement("agg-1");
  auto [status, body] = reload();
  EXPECT_EQ(status, 200) << body.dump();
  EXPECT_NE(body["reloaded"].value("placement", "").find("source file"), std::string::npos) << body.dump();
  EXPECT_EQ(send("acc-1", {{"type", "open_account"}, {"initial_balance", 0}}).value("status", ""),
            "accepted");
  write_file(file, "{not json");
  auto [bad_status, bad] = reload();
  EXPECT_EQ(bad_status, 422) << bad.dump();
  EXPECT_NE(bad["failed"].value("placement", "").find("placement.json"), std::string::npos) << bad.dump();
  EXPECT_EQ(send("acc-1", {{"type", "deposit"}, {"amount", 1}}).value("status", ""), "accepted")
      << "the applied placement stays";
}

}  // namespace
}  // namespace esflow
