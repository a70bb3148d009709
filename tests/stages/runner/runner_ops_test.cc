// The runner's operations (docs/runner.md "Reads and operations") over HTTP
// on the embedded backend: the shipped aggregate.yaml beside a test runner
// pipeline written to a temp dir, whose saga `Probe` follows Account events
// and raises on an amount of 13 (a poison input). Quarantine list/show/retry,
// replay (dry run and confirmed, one tenant only), the /info section and
// the esflow_runner_* metrics.
#include "cli/quarantine.h"
#include "cli/replay.h"
#include "stages/runner/runner_admin.h"
#include "stages/runner/runner_service.h"
#include "storage/node_store.h"
#include "tests/stages/runner/runner_node.h"

#include <fstream>
#include <regex>
#include <sstream>

namespace esflow::runner_test {
namespace {

constexpr const char* k_program = R"(
function on_event(state, input)
  local p = input.payload or {}
  if p.initial_balance == 13 or p.amount == 13 then error("unlucky 13") end
  local n = 0
  if state ~= nil and state.n ~= nil then n = state.n end
  if input.kind == "event" and p.initial_balance == 21 then
    return {state = {n = n + 1}, work = {{kind = "effect", effect = "notify", payload = {n = n}}},
            schedules = {{name = "ping", after_ms = 0}}}
  end
  return {state = {n = n + 1}}
end
)";

constexpr const char* k_pipeline = R"(pipeline: probe
settings:
  http: 127.0.0.1:0
  data_dir: ./data
  durability: ${ESFLOW_DURABILITY:-fsync}
  event_log: embedded
  tenancy: multi
sagas:
  Probe:
    program: probe.lua
    triggers:
      - { aggregate_type: Account, events: [account_opened, deposited] }
    correlate_by: aggregate_id
effects:
  notify: { provider: http, url: "http://127.0.0.1:9/hook", secret_file: token.txt }
stages:
  follow:   { kind: saga.follow, batch: 256, poll: 10ms }
  tenant:   { kind: tenant.gate, key: message, concurrency: 4 }
  dedupe:   { kind: saga.dedupe, key: message, concurrency: 4 }
  load:     { kind: saga.load, key: message, concurrency: 4 }
  run:      { kind: saga.run, key: message, concurrency: 4 }
  commit:   { kind: saga.commit, key: message }
  ack:      { kind: ack }
  scan:     { kind: outbox.scan, per_tenant: 64 }
  dispatch: { kind: outbox.dispatch }
  confirm:  { kind: outbox.confirm }
  due:      { kind: schedule.scan, poll: 10ms }
  remind:   { kind: schedule.publish }
  fired:    { kind: schedule.delete }
flow:
  - follow -> tenant -> dedupe -> load -> run -> commit -> ack
  - "tenant.error -> ack"
  - "dedupe.error -> ack"
  - "load.error -> ack"
  - "run.error -> ack"
  - "commit.error -> ack"
  - scan -> dispatch -> confirm
  - "dispatch.error -> confirm"
  - due -> remind -> fired
  - "remind.error -> fired"
)";

class runner_ops : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir.path() / "probe.lua") << k_program;
    std::ofstream(dir.path() / "token.txt") << "s3cr3t-token\n";
    std::ofstream(dir.path() / "probe.yaml") << k_pipeline;
  }
  std::string data() const { return (dir.path() / "data").string(); }
  std::vector<std::string> files() const {
    return {pipeline("aggregate.yaml"), (dir.path() / "probe.yaml").string()};
  }

  static json get(runner_node& node, const std::string& path, int* status = nullptr) {
    auto r = node.client().Get(path);
    if (status != nullptr) *status = r ? r->status : 0;
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  static json post(runner_node& node, const std::string& path, const json& body, int* status) {
    auto r = node.client().Post(path, body.is_null() ? std::string() : body.dump(), "application/json");
    *status = r ? r->status : 0;
    return r ? json::parse(r->body, nullptr, false) : json();
  }
  static json quarantine(runner_node& node) { return get(node, "/admin/quarantine")["items"]; }
  static std::int64_t probe_inputs(runner_node& node, const std::string& tenant, const std::string& id) {
    auto r = node.client().Get("/v1/sagas/Probe/" + id, {{"x-tenant-id", tenant}});
    if (!r || r->status != 200) return -1;
    return http_test::json_of(r).value("inputs", std::int64_t{-1});
  }
  static std::shared_ptr<runner::runner_service> service(runner_node& node) {
    return node.services().find<runner::runner_service>(
        "runner:" + storage::normalise_data_dir(node.data_dir()) + ":probe");
  }

  http_test::temp_dir dir;
};

json find_item(const json& items, const std::string& source) {
  for (const auto& i : items)
    if (i.value("source", "") == source) return i;
  return json();
}

TEST_F(runner_ops, a_poison_input_is_listed_shown_and_retried) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node.command("acme", "Account", "acc-ok", open_account(5))["status"], "accepted");
  EXPECT_EQ(node.command("acme", "Account", "acc-bad", open_account(13))["status"], "accepted");
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "acme", "acc-ok") == 1; }));
  const std::string source = "runner:probe:log:Probe:acc-bad";
  ASSERT_TRUE(node.eventually([&] { return find_item(quarantine(node), source).is_object(); }))
      << quarantine(node).dump();
  const auto item = find_item(quarantine(node), source);
  EXPECT_EQ(item["tenant_id"], "acme") << item.dump();
  EXPECT_EQ(item["attempts"], 1) << item.dump();
  EXPECT_NE(item["reason"].get<std::string>().find("unlucky 13"), std::string::npos) << item.dump();
  EXPECT_EQ(item["record"]["saga"], "Probe");
  const auto id = item["id"].get<std::string>();
  EXPECT_TRUE(std::regex_match(id, std::regex("[A-Za-z0-9_-]+"))) << id;
  auto parsed = runner::parse_quarantine_id(id);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->first, source);
  EXPECT_EQ(parsed->second, item["position"].get<std::uint64_t>());
  EXPECT_EQ(runner::quarantine_id(parsed->first, parsed->second), id);

  int status = 0;
  auto shown = get(node, "/admin/quarantine/" + id, &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(shown["id"], id);
  EXPECT_EQ(shown["record"]["inputs"].size(), 1U) << shown.dump();

  // Retry: the marker and the record go, the input runs again and (still 13) comes back with attempts 2.
  auto retried = post(node, "/admin/quarantine/" + id + "/retry", json(), &status);
  EXPECT_EQ(status, 202) << retried.dump();
  EXPECT_EQ(retried["inputs"], 1);
  ASSERT_TRUE(node.eventually([&] {
    const auto again = find_item(quarantine(node), source);
    return again.is_object() && again["attempts"] == 2;
  })) << quarantine(node).dump();
  EXPECT_EQ(quarantine(node).size(), 1U) << "the same record, written again";
  EXPECT_EQ(probe_inputs(node, "acme", "acc-ok"), 1) << "other instances untouched";
}

TEST_F(runner_ops, bad_ids_and_limits_are_refused_and_the_list_pages) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  node.command("acme", "Account", "bad-1", open_account(13));
  node.command("acme", "Account", "bad-2", open_account(13));
  ASSERT_TRUE(node.eventually([&] { return quarantine(node).size() == 2; })) << quarantine(node).dump();
  int status = 0;
  auto page = get(node, "/admin/quarantine?limit=1", &status);
  EXPECT_EQ(status, 200);
  ASSERT_EQ(page["items"].size(), 1U) << page.dump();
  ASSERT_TRUE(page["next"].is_string()) << page.dump();
  auto rest = get(node, "/admin/quarantine?limit=10&after=" + page["next"].get<std::string>(), &status);
  ASSERT_EQ(rest["items"].size(), 1U) << rest.dump();
  EXPECT_NE(rest["items"][0]["id"], page["items"][0]["id"]);
  EXPECT_TRUE(rest["next"].is_null());

  auto unknown = get(node, "/admin/quarantine/" + runner::quarantine_id("nobody", 1), &status);
  EXPECT_EQ(status, 404);
  EXPECT_EQ(unknown["code"], "not_found");
  auto malformed = get(node, "/admin/quarantine/!!", &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(malformed["code"], "invalid_command");
  get(node, "/admin/quarantine/AAAA", &status);  // base64url, but not a quarantine key
  EXPECT_EQ(status, 400);
  post(node, "/admin/quarantine/" + runner::quarantine_id("nobody", 1) + "/retry", json(), &status);
  EXPECT_EQ(status, 404);
  get(node, "/admin/quarantine?limit=0", &status);
  EXPECT_EQ(status, 400);
  get(node, "/admin/quarantine?limit=1001", &status);
  EXPECT_EQ(status, 400);
}

TEST_F(runner_ops, a_record_of_a_consumer_that_does_not_run_here_is_refused_and_kept) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  auto svc = service(node);
  ASSERT_NE(svc, nullptr);
  const json record = {{"source", "esflow-aggregate-ingest"},
                       {"stream", "AGGREGATE_COMMANDS"},
                       {"stream_sequence", 7},
                       {"subject", "tenant.acme.cmd.Account"},
                       {"headers", json::object()},
                       {"body", "{}"},
                       {"reason", "max_deliver"},
                       {"deliveries", 5}};
  ASSERT_TRUE(svc->store().quarantine().put("esflow-aggregate-ingest", 7, record.dump()).ok());
  const auto id = runner::quarantine_id("esflow-aggregate-ingest", 7);
  int status = 0;
  auto shown = get(node, "/admin/quarantine/" + id, &status);
  EXPECT_EQ(status, 200);
  EXPECT_EQ(shown["attempts"], 5) << "deliveries";
  auto refused = post(node, "/admin/quarantine/" + id + "/retry", json(), &status);
  EXPECT_EQ(status, 409);
  EXPECT_EQ(refused["code"], "invalid_command");
  EXPECT_NE(refused["message"].get<std::string>().find(
                "consumer 'esflow-aggregate-ingest' does not run on this node's data directory"),
            std::string::npos)
      << refused.dump();
  EXPECT_EQ(get(node, "/admin/quarantine/" + id, &status)["id"], id) << "kept";
}

TEST_F(runner_ops, replay_dry_run_changes_nothing_and_confirm_reruns_one_tenant) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  node.command("acme", "Account", "acc-1", open_account(5));
  node.command("acme", "Account", "acc-1", {{"type", "deposit"}, {"amount", 2}});
  node.command("other", "Account", "acc-1", open_account(7));
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "acme", "acc-1") == 2; }));
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "other", "acc-1") == 1; }));

  int status = 0;
  auto dry = post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", 0}}, &status);
  EXPECT_EQ(status, 200) << dry.dump();
  EXPECT_EQ(dry["dry_run"], true);
  EXPECT_EQ(dry["inputs"], 2) << dry.dump();
  EXPECT_EQ(dry["instances"], json::array({"acc-1"}));
  EXPECT_EQ(dry["from"], 0);
  EXPECT_GE(dry["to"].get<std::uint64_t>(), 3U);
  EXPECT_EQ(dry["truncated"], false);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(probe_inputs(node, "acme", "acc-1"), 2) << "a dry run changes nothing";

  auto done = post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", 0}, {"confirm", true}},
                   &status);
  EXPECT_EQ(status, 202) << done.dump();
  EXPECT_EQ(done["dry_run"], false);
  EXPECT_EQ(done["inputs"], 2);
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "acme", "acc-1") == 4; }))
      << probe_inputs(node, "acme", "acc-1");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(probe_inputs(node, "acme", "acc-1"), 4) << "each input once more";
  EXPECT_EQ(probe_inputs(node, "other", "acc-1"), 1) << "another tenant's instance is untouched";

  // From the head: nothing to do.
  auto none = post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", dry["to"]}}, &status);
  EXPECT_EQ(none["inputs"], 0) << none.dump();

  auto no_tenant = post(node, "/admin/sagas/Probe/replay", {{"from", 0}}, &status);
  EXPECT_EQ(status, 400) << no_tenant.dump();
  post(node, "/admin/sagas/Nope/replay", {{"tenant_id", "acme"}, {"from", 0}}, &status);
  EXPECT_EQ(status, 404);
  auto no_saga = post(node, "/admin/sagas//replay", {{"tenant_id", "acme"}, {"from", 0}}, &status);
  EXPECT_EQ(status, 400);
  EXPECT_EQ(no_saga["code"], "invalid_command");
  post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", "zero"}}, &status);
  EXPECT_EQ(status, 400);
  post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", 0}, {"confirm", "yes"}}, &status);
  EXPECT_EQ(status, 400);
}

TEST_F(runner_ops, info_describes_the_runner_pipeline_without_secrets) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  int status = 0;
  auto info = get(node, "/info", &status);
  ASSERT_EQ(status, 200);
  ASSERT_TRUE(info.contains("runner")) << info.dump();
  const auto& r = info["runner"]["probe"];
  ASSERT_TRUE(r.is_object()) << info["runner"].dump();
  EXPECT_EQ(r["mode"], "saga");
  EXPECT_EQ(r["event_log"], "embedded");
  ASSERT_EQ(r["sagas"].size(), 1U);
  EXPECT_EQ(r["sagas"][0]["name"], "Probe");
  EXPECT_NE(r["sagas"][0]["program"].get<std::string>().find("probe.lua"), std::string::npos);
  EXPECT_EQ(r["sagas"][0]["triggers"][0]["aggregate_type"], "Account");
  EXPECT_EQ(r["sagas"][0]["triggers"][0]["events"], json::array({"account_opened", "deposited"}));
  EXPECT_EQ(r["checkpoints"], json::array({"runner:probe:log", "runner:probe:events"}));
  EXPECT_EQ(r["consumers"], r["checkpoints"]);
  EXPECT_EQ(r["streams"]["reads"], json::array({"event log", "WORKFLOW_EVENTS"}));
  ASSERT_EQ(r["effects"].size(), 1U);
  EXPECT_EQ(r["effects"][0]["provider"], "http");
  EXPECT_EQ(r["effects"][0]["url"], "http://127.0.0.1:9/hook");
  EXPECT_EQ(r["effects"][0]["authorization"], true);
  EXPECT_EQ(info.dump().find("s3cr3t"), std::string::npos) << "never the secret";
}

TEST_F(runner_ops, metrics_are_exported_and_move) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  auto scrape = [&] {
    auto r = node.client().Get("/metrics");
    return r && r->status == 200 ? r->body : std::string();
  };
  node.command("acme", "Account", "m-1", open_account(5));
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "acme", "m-1") == 1; }));
  const std::string committed = R"(kind="event",outcome="committed",pipeline="probe")";
  ASSERT_TRUE(node.eventually([&] { return metric(scrape(), "esflow_runner_inputs_total", committed) >= 1; }))
      << scrape();
  const auto before = metric(scrape(), "esflow_runner_inputs_total", committed);
  node.command("acme", "Account", "m-2", open_account(6));
  node.command("acme", "Account", "m-3", open_account(13));
  ASSERT_TRUE(node.eventually(
      [&] { return metric(scrape(), "esflow_runner_inputs_total", committed) >= before + 1; }));
  ASSERT_TRUE(node.eventually([&] {
    return metric(scrape(), "esflow_runner_inputs_total",
                  R"(kind="event",outcome="quarantined",pipeline="probe")") >= 1;
  }));
  const auto text = scrape();
  EXPECT_GE(metric(text, "esflow_runner_saga_commit_duration_seconds_count", R"(pipeline="probe")"), 2)
      << text;
  EXPECT_GE(metric(text, "esflow_runner_input_lag", R"(pipeline="probe",source="log")"), 0) << text;
  EXPECT_GE(metric(text, "esflow_runner_outbox_depth", R"(pipeline="probe")"), 0) << text;
  EXPECT_GE(metric(text, "esflow_runner_effects_total", R"(effect="notify",outcome="failed")"), 0) << text;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("esflow_runner_", 0) == 0) {
      EXPECT_EQ(line.find("tenant"), std::string::npos) << "no tenant label: " << line;
    }
  }

  // A replay moves the retried and skipped counters.
  int status = 0;
  post(node, "/admin/sagas/Probe/replay", {{"tenant_id", "acme"}, {"from", 0}, {"confirm", true}}, &status);
  EXPECT_EQ(status, 202);
  EXPECT_TRUE(node.eventually([&] {
    return metric(scrape(), "esflow_runner_retried_inputs_total", R"(pipeline="probe")") >= 3;
  })) << scrape();
}

TEST_F(runner_ops, an_effect_pipeline_beside_it_has_its_own_info_and_metrics) {
  runner_node node(data(), {pipeline("aggregate.yaml"), (dir.path() / "probe.yaml").string(),
                            pipeline("runner-effect.yaml")});
  ASSERT_TRUE(node.ok());
  int status = 0;
  auto info = get(node, "/info", &status)["runner"];
  EXPECT_EQ(info["probe"]["mode"], "saga") << info.dump();
  EXPECT_EQ(info["runner-effect"]["mode"], "effect") << info.dump();
  EXPECT_EQ(info["runner-effect"]["checkpoints"], json::array({"runner:runner-effect:commands"}));
  EXPECT_EQ(info["runner-effect"]["streams"]["reads"], json::array({"WORKFLOW_COMMANDS"}));
  EXPECT_EQ(info["runner-effect"]["effects"][0]["provider"], "log");

  // 21: the saga asks for the `notify` effect and a `ping` reminder due at once.
  node.command("acme", "Account", "e-1", open_account(21));
  ASSERT_TRUE(node.eventually([&] { return probe_inputs(node, "acme", "e-1") == 3; }))
      << "the event, the effect result and the reminder: " << probe_inputs(node, "acme", "e-1");
  auto scrape = [&] {
    auto r = node.client().Get("/metrics");
    return r && r->status == 200 ? r->body : std::string();
  };
  ASSERT_TRUE(node.eventually([&] {
    return metric(scrape(), "esflow_runner_outbox_dispatched_total",
                  R"(outcome="confirmed",pipeline="probe")") >= 1;
  })) << scrape();
  const auto text = scrape();
  EXPECT_GE(metric(text, "esflow_runner_effects_total",
                   R"(effect="notify",outcome="succeeded",pipeline="runner-effect")"),
            1)
      << text;
  EXPECT_GE(metric(text, "esflow_runner_effect_duration_seconds_count",
                   R"(effect="notify",pipeline="runner-effect")"),
            1);
  EXPECT_GE(metric(text, "esflow_runner_outbox_dispatch_duration_seconds_count", R"(pipeline="probe")"), 1);
  EXPECT_GE(metric(text, "esflow_runner_schedule_lag_seconds_count", R"(pipeline="probe")"), 1);
  EXPECT_GE(metric(text, "esflow_runner_inputs_total",
                   R"(kind="effect_result",outcome="committed",pipeline="probe")"),
            1);
  EXPECT_GE(
      metric(text, "esflow_runner_inputs_total", R"(kind="reminder",outcome="committed",pipeline="probe")"),
      1);
}

TEST_F(runner_ops, the_cli_lists_shows_retries_and_replays) {
  runner_node node(data(), files());
  ASSERT_TRUE(node.ok());
  node.command("acme", "Account", "c-1", open_account(13));
  ASSERT_TRUE(node.eventually([&] { return quarantine(node).size() == 1; }));
  const auto id = quarantine(node)[0]["id"].get<std::string>();
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::quarantine_list_command(node.url(), 10, out, err), cli::k_ok) << err.str();
    EXPECT_NE(out.str().find(id), std::string::npos) << out.str();
    EXPECT_NE(out.str().find("unlucky 13"), std::string::npos) << out.str();
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::quarantine_list_command(node.url(), 0, out, err), cli::k_usage);
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::quarantine_show_command(node.url(), id, out, err), cli::k_ok) << err.str();
    EXPECT_NE(out.str().find("\"saga\": \"Probe\""), std::string::npos) << out.str();
    EXPECT_EQ(cli::quarantine_show_command(node.url(), "!!", out, err), cli::k_failure);
    EXPECT_NE(err.str().find("400"), std::string::npos) << err.str();
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::quarantine_retry_command(node.url(), id, out, err), cli::k_ok) << err.str();
    ASSERT_TRUE(node.eventually(
        [&] { return quarantine(node).size() == 1 && quarantine(node)[0]["attempts"] == 2; }));
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::replay_command(node.url(), "Probe", "acme", 0, false, out, err), cli::k_ok) << err.str();
    EXPECT_NE(out.str().find("\"dry_run\": true"), std::string::npos) << out.str();
    EXPECT_EQ(cli::replay_command(node.url(), "Nope", "acme", 0, false, out, err), cli::k_failure);
    EXPECT_EQ(cli::replay_command(node.url(), "", "acme", 0, false, out, err), cli::k_usage);
  }
  {
    std::ostringstream out, err;
    EXPECT_EQ(cli::quarantine_list_command("127.0.0.1:1", 10, out, err), cli::k_failure);
  }
}

}  // namespace
}  // namespace esflow::runner_test
