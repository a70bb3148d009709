// A real aggregate node (pipelines/aggregate.yaml, temp data dir) served over
// HTTP on a free loopback port, driven with httplib::Client as a client would:
// the README session, the malformed-command barrage, trace/correlation rules,
// duplicates, tenancy and event paging (docs/contract.md "HTTP endpoints of aggregate nodes",
// "Behaviour clients rely on").
#include "cli/app.h"
#include "schemas/ids.h"
#include "tests/stages/ingest/http_util.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace esflow {
namespace {

using http_test::expect_rejection;
using http_test::json_of;
using nlohmann::json;

std::string aggregate_pipeline() { return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml"; }

class aggregate_http : public ::testing::Test {
 protected:
  void SetUp() override {
    // The shipped file as it is, on a temp data dir and a free port (the
    // flags' overrides, as `esflow run --data-dir D --http ...` applies them).
    cli::serve_options o;
    o.overrides.data_dir = (_dir.path() / "data").string();
    o.overrides.http = "127.0.0.1:0";
    auto served = cli::serve_nodes({aggregate_pipeline()}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    _client = std::make_unique<httplib::Client>(cli::served_url(*_served));
    _client->set_keep_alive(true);
    _client->set_tcp_nodelay(true);
    _client->set_read_timeout(30, 0);
  }
  void TearDown() override {
    _client.reset();
    _served.reset();
  }

  httplib::Result send(const std::string& body, const std::string& tenant = "acme",
                       httplib::Headers extra = {}) {
    if (!tenant.empty()) extra.emplace("x-tenant-id", tenant);
    return _client->Post("/v1/commands", extra, body, "application/json");
  }
  httplib::Result command(const std::string& id, const json& payload, const std::string& tenant = "acme",
                          httplib::Headers extra = {}, const std::string& command_id = {}) {
    json body = {{"aggregate_type", "Account"}, {"aggregate_id", id}, {"payload", payload}};
    if (!command_id.empty()) body["command_id"] = command_id;
    return send(body.dump(), tenant, std::move(extra));
  }
  json accepted(const httplib::Result& r) {
    EXPECT_TRUE(r);
    if (!r) return nullptr;
    EXPECT_EQ(r->status, 200) << r->body;
    auto j = json_of(r);
    EXPECT_EQ(j.value("status", ""), "accepted") << r->body;
    return j;
  }
  httplib::Result get(const std::string& path, const std::string& tenant = "acme") {
    httplib::Headers h;
    if (!tenant.empty()) h.emplace("x-tenant-id", tenant);
    return _client->Get(path, h);
  }

  http_test::temp_dir _dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _client;
};

json open_account(std::int64_t n) { return {{"type", "open_account"}, {"initial_balance", n}}; }
json deposit(std::int64_t n) { return {{"type", "deposit"}, {"amount", n}}; }
json withdraw(std::int64_t n) { return {{"type", "withdraw"}, {"amount", n}}; }

TEST_F(aggregate_http, readme_session_open_deposit_withdraw_read) {
  auto opened = accepted(command("acc-1", open_account(100)));
  EXPECT_EQ(opened["aggregate_id"], "acc-1");
  EXPECT_EQ(opened["version"], 1);
  EXPECT_EQ(opened["duplicate"], false);
  ASSERT_EQ(opened["events"].size(), 1U);
  EXPECT_EQ(opened["events"][0]["event_type"], "account_opened");
  EXPECT_EQ(opened["events"][0]["tenant_id"], "acme");
  EXPECT_EQ(accepted(command("acc-1", deposit(50)))["version"], 2);
  EXPECT_EQ(accepted(command("acc-1", withdraw(30)))["version"], 3);

  auto state = get("/v1/aggregates/Account/acc-1");
  ASSERT_TRUE(state);
  ASSERT_EQ(state->status, 200) << state->body;
  EXPECT_EQ(json_of(state), (json{{"aggregate_type", "Account"},
                                  {"aggregate_id", "acc-1"},
                                  {"version", 3},
                                  {"state", {{"open", true}, {"balance", 120}}}}));
  EXPECT_EQ(state->get_header_value("tenant-id"), "acme");

  auto events = get("/v1/aggregates/Account/acc-1/events");
  ASSERT_TRUE(events);
  ASSERT_EQ(events->status, 200) << events->body;
  const auto j = json_of(events);
  ASSERT_EQ(j["events"].size(), 3U);
  EXPECT_TRUE(j["next_after"].is_null());
  const std::vector<std::string> types = {"account_opened", "deposited", "withdrawn"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(j["events"][i]["version"], i + 1);
    EXPECT_EQ(j["events"][i]["event_type"], types[i]);
    EXPECT_EQ(j["events"][i]["payload"]["type"], types[i]);
    EXPECT_TRUE(schemas::is_valid_timestamp(j["events"][i]["timestamp"].get<std::string>()));
  }

  expect_rejection(command("acc-1", withdraw(1000)), 422, "insufficient_funds");
  expect_rejection(command("acc-2", deposit(5)), 422, "account_not_open");
  expect_rejection(command("acc-1", deposit(-5)), 422, "invalid_amount");
  expect_rejection(command("acc-1", {{"type", "transfer"}}), 422, "unknown_command");
  // Rejections stored nothing.
  EXPECT_EQ(json_of(get("/v1/aggregates/Account/acc-1"))["version"], 3);
}

struct bad_case {
  std::string name;
  std::string body;
  std::string tenant;  // x-tenant-id ("<none>": no header)
  httplib::Headers extra;
  int status;
  std::string code;
};

std::string cmd_with(const std::string& field, const json& value) {
  json body = {{"aggregate_type", "Account"}, {"aggregate_id", "acc-x"}, {"payload", deposit(1)}};
  if (value.is_discarded())
    body.erase(field);
  else
    body[field] = value;
  return body.dump();
}

const json k_missing = json(json::value_t::discarded);

TEST_F(aggregate_http, malformed_commands_get_their_contract_code_and_status) {
  // Accepted before the barrage; must all be readable after it.
  for (int i = 0; i < 5; ++i) accepted(command("keep-" + std::to_string(i), open_account(i)));

  const std::string long_id(129, 'a');
  const std::vector<bad_case> cases = {
      {"not json", "{not json", "acme", {}, 400, "invalid_command"},
      {"empty body", "", "acme", {}, 400, "invalid_command"},
      {"array root", "[]", "acme", {}, 400, "invalid_command"},
      {"string root", R"("Account")", "acme", {}, 400, "invalid_command"},
      {"number root", "42", "acme", {}, 400, "invalid_command"},
      {"truncated",
       R"({"aggregate_type":"Account","payload":{"type":"deposit")",
       "acme",
       {},
       400,
       "invalid_command"},
      {"aggregate_type number", cmd_with("aggregate_type", 7), "acme", {}, 400, "invalid_command"},
      {"aggregate_type object",
       cmd_with("aggregate_type", json::object()),
       "acme",
       {},
       400,
       "invalid_command"},
      {"aggregate_id number", cmd_with("aggregate_id", 7), "acme", {}, 400, "invalid_command"},
      {"command_id number", cmd_with("command_id", 7), "acme", {}, 400, "invalid_command"},
      {"command_id array", cmd_with("command_id", json::array()), "acme", {}, 400, "invalid_command"},
      {"tenant_id number", cmd_with("tenant_id", 7), "acme", {}, 400, "invalid_command"},
      {"missing aggregate_type", cmd_with("aggregate_type", k_missing), "acme", {}, 400, "invalid_command"},
      {"missing payload", cmd_with("payload", k_missing), "acme", {}, 400, "invalid_command"},
      {"payload string", cmd_with("payload", "deposit"), "acme", {}, 400, "invalid_command"},
      {"payload array", cmd_with("payload", json::array({1})), "acme", {}, 400, "invalid_command"},
      {"payload number", cmd_with("payload", 5), "acme", {}, 400, "invalid_command"},
      {"payload.type missing", cmd_with("payload", {{"amount", 1}}), "acme", {}, 400, "invalid_command"},
      {"payload.type number", cmd_with("payload", {{"type", 1}}), "acme", {}, 400, "invalid_command"},
      {"aggregate_type empty", cmd_with("aggregate_type", ""), "acme", {}, 400, "invalid_command"},
      {"aggregate_type digit first",
       cmd_with("aggregate_type", "1Account"),
       "acme",
       {},
       400,
       "invalid_command"},
      {"aggregate_type with dot", cmd_with("aggregate_type", "Acc.ount"), "acme", {}, 400, "invalid_command"},
      {"unknown aggregate type", cmd_with("aggregate_type", "Nope"), "acme", {}, 400, "invalid_command"},
      {"aggregate_id empty", cmd_with("aggregate_id", ""), "acme", {}, 400, "invalid_command"},
      {"aggregate_id too long", cmd_with("aggregate_id", long_id), "acme", {}, 400, "invalid_command"},
      {"aggregate_id with dot", cmd_with("aggregate_id", "a.b"), "acme", {}, 400, "invalid_command"},
      {"aggregate_id with star", cmd_with("aggregate_id", "a*"), "acme", {}, 400, "invalid_command"},
      {"aggregate_id with gt", cmd_with("aggregate_id", "a>"), "acme", {}, 400, "invalid_command"},
      {"aggregate_id with space", cmd_with("aggregate_id", "a b"), "acme", {}, 400, "invalid_command"},
      {"command_id empty", cmd_with("command_id", ""), "acme", {}, 400, "invalid_command"},
      {"command_id too long", cmd_with("command_id", long_id), "acme", {}, 400, "invalid_command"},
      {"command_id with dot", cmd_with("command_id", "c.1"), "acme", {}, 400, "invalid_command"},
      {"command_id with space", cmd_with("command_id", "c 1"), "acme", {}, 400, "invalid_command"},
      {"tenant header missing", cmd_with("aggregate_id", "acc-x"), "<none>", {}, 400, "invalid_tenant"},
      {"tenant header empty", cmd_with("aggregate_id", "acc-x"), "", {}, 400, "invalid_tenant"},
      {"tenant underscore", cmd_with("aggregate_id", "acc-x"), "_", {}, 400, "invalid_tenant"},
      {"tenant 65 chars", cmd_with("aggregate_id", "acc-x"), std::string(65, 't'), {}, 400, "invalid_tenant"},
      {"tenant with dot", cmd_with("aggregate_id", "acc-x"), "ac.me", {}, 400, "invalid_tenant"},
      {"tenant with star", cmd_with("aggregate_id", "acme*"), "acme*", {}, 400, "invalid_tenant"},
      {"tenant before body", "{not json", "ac.me", {}, 400, "invalid_tenant"},
      {"body tenant differs", cmd_with("tenant_id", "other"), "acme", {}, 403, "tenant_access_denied"},
      {"idempotency key with dot",
       cmd_with("aggregate_id", "acc-x"),
       "acme",
       {{"Idempotency-Key", "k.1"}},
       400,
       "invalid_command"},
      {"idempotency key too long",
       cmd_with("aggregate_id", "acc-x"),
       "acme",
       {{"Idempotency-Key", long_id}},
       400,
       "invalid_command"},
      {"oversize body", std::string((1 << 20) + 1, ' '), "acme", {}, 413, "payload_too_large"},
  };
  ASSERT_GE(cases.size(), 30U);
  for (const auto& c : cases) {
    httplib::Headers h = c.extra;
    if (c.tenant != "<none>") h.emplace("x-tenant-id", c.tenant);
    auto r = _client->Post("/v1/commands", h, c.body, "application/json");
    expect_rejection(r, c.status, c.code, c.name);
  }

  auto health = _client->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  for (int i = 0; i < 5; ++i) {
    auto r = get("/v1/aggregates/Account/keep-" + std::to_string(i));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json_of(r)["state"]["balance"], i);
  }
  // Nothing of the barrage was stored.
  expect_rejection(get("/v1/aggregates/Account/acc-x"), 404, "not_found");
}

TEST_F(aggregate_http, uppercase_traceparent_is_replaced) {
  const std::string upper = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01";
  auto r = command("tr-1", open_account(1), "acme", {{"traceparent", upper}});
  auto j = accepted(r);
  const auto tp = r->get_header_value("traceparent");
  EXPECT_NE(tp, upper);
  auto parsed = schemas::parse_traceparent(tp);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(j["events"][0]["trace_id"], std::string(parsed->trace_id));
  EXPECT_NE(j["events"][0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(aggregate_http, valid_traceparent_is_kept_and_recorded) {
  const std::string tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto r =
      command("tr-2", open_account(1), "acme", {{"traceparent", tp}, {"x-correlation-id", "order-7:a.b"}});
  auto j = accepted(r);
  EXPECT_EQ(r->get_header_value("traceparent"), tp);
  EXPECT_EQ(r->get_header_value("x-correlation-id"), "order-7:a.b");
  EXPECT_EQ(j["events"][0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(j["events"][0]["correlation_id"], "order-7:a.b");
  auto stored = json_of(get("/v1/aggregates/Account/tr-2/events"));
  EXPECT_EQ(stored["events"][0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(aggregate_http, invalid_traceparents_are_replaced) {
  for (const std::string bad : {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", "garbage"}) {
    auto r = command("tr-3", deposit(1), "acme", {{"traceparent", bad}});
    ASSERT_TRUE(r);
    EXPECT_NE(r->get_header_value("traceparent"), bad);
    EXPECT_TRUE(schemas::parse_traceparent(r->get_header_value("traceparent"))) << bad;
  }
}

TEST_F(aggregate_http, bad_correlation_id_is_replaced_by_a_uuid_and_request_id_echoed) {
  auto r =
      command("co-1", open_account(1), "acme", {{"x-correlation-id", "has space"}, {"x-request-id", "rq-9"}});
  auto j = accepted(r);
  const auto corr = r->get_header_value("x-correlation-id");
  EXPECT_NE(corr, "has space");
  EXPECT_TRUE(schemas::is_uuid_v7(corr)) << corr;
  EXPECT_EQ(j["events"][0]["correlation_id"], corr);
  EXPECT_EQ(r->get_header_value("x-request-id"), "rq-9");
  // Rejections carry the headers too.
  auto bad = send("{", "acme", {{"x-request-id", "rq-10"}, {"x-correlation-id", std::string(129, 'c')}});
  expect_rejection(bad, 400, "invalid_command");
  EXPECT_EQ(bad->get_header_value("x-request-id"), "rq-10");
  EXPECT_TRUE(schemas::is_uuid_v7(bad->get_header_value("x-correlation-id")));
}

TEST_F(aggregate_http, duplicate_command_returns_the_original_result) {
  auto opened = accepted(command("dup-1", open_account(10)));
  auto first = accepted(command("dup-1", deposit(5), "acme", {}, "cmd-dup-1"));
  // The commit's log position (docs/contract.md, "Reading your own writes"): grows.
  ASSERT_TRUE(opened["position"].is_number_unsigned()) << opened.dump();
  EXPECT_GT(opened["position"].get<std::uint64_t>(), 0U);
  EXPECT_GT(first["position"].get<std::uint64_t>(), opened["position"].get<std::uint64_t>());
  auto again = accepted(command("dup-1", deposit(5), "acme", {}, "cmd-dup-1"));
  EXPECT_EQ(again["duplicate"], true);
  EXPECT_EQ(again["version"], first["version"]);
  EXPECT_EQ(again["position"], first["position"]) << "a duplicate carries the original position";
  EXPECT_EQ(again["events"], first["events"]);
  // Idempotency-Key is the command id when the body has none.
  auto by_key = accepted(command("dup-1", deposit(7), "acme", {{"Idempotency-Key", "key-7"}}));
  auto by_key_again = accepted(command("dup-1", deposit(7), "acme", {{"Idempotency-Key", "key-7"}}));
  EXPECT_EQ(by_key_again["duplicate"], true);
  EXPECT_EQ(by_key_again["version"], by_key["version"]);
  // Same id, other payload or aggregate.
  expect_rejection(command("dup-1", deposit(6), "acme", {}, "cmd-dup-1"), 409, "command_id_reused");
  expect_rejection(command("dup-2", deposit(5), "acme", {}, "cmd-dup-1"), 409, "command_id_reused");
  EXPECT_EQ(json_of(get("/v1/aggregates/Account/dup-1"))["state"]["balance"], 22);
}

TEST_F(aggregate_http, same_id_under_two_tenants_is_two_aggregates) {
  accepted(command("shared", open_account(1), "acme"));
  accepted(command("shared", open_account(2), "globex"));
  accepted(command("shared", deposit(10), "globex"));
  EXPECT_EQ(json_of(get("/v1/aggregates/Account/shared", "acme"))["state"]["balance"], 1);
  auto g = json_of(get("/v1/aggregates/Account/shared", "globex"));
  EXPECT_EQ(g["state"]["balance"], 12);
  EXPECT_EQ(g["version"], 2);
  // The same command id under two tenants is two commands.
  accepted(command("shared", deposit(1), "acme", {}, "same-cmd"));
  auto other = accepted(command("shared", deposit(1), "globex", {}, "same-cmd"));
  EXPECT_EQ(other["duplicate"], false);
}

// GET /admin/tenants lists the tenants served with their aggregates and last
// commit, and survives a restart (the node store's `tenants` family).
TEST_F(aggregate_http, admin_tenants_lists_served_tenants_with_aggregates_and_last_activity) {
  accepted(command("t-1", open_account(1), "acme"));
  accepted(command("t-2", open_account(1), "acme"));
  accepted(command("t-1", deposit(5), "acme"));
  accepted(command("t-1", open_account(1), "globex"));
  const auto check = [](const json& list) {
    ASSERT_TRUE(list.is_array()) << list.dump();
    ASSERT_EQ(list.size(), 2U) << list.dump();
    EXPECT_EQ(list[0]["tenant_id"], "acme");
    EXPECT_EQ(list[0]["aggregates"], 2);
    EXPECT_EQ(list[1]["tenant_id"], "globex");
    EXPECT_EQ(list[1]["aggregates"], 1);
    for (const auto& t : list) {
      EXPECT_EQ(t["draining"], false);
      EXPECT_EQ(t["last_activity"].get<std::string>().substr(0, 2), "20") << t.dump();
    }
  };
  check(json_of(_client->Get("/admin/tenants")));
  // Restarted on the same directory: still known.
  _client.reset();
  _served.reset();
  SetUp();
  check(json_of(_client->Get("/admin/tenants")));
}

TEST_F(aggregate_http, another_tenants_aggregate_reads_as_never_used) {
  accepted(command("private-1", open_account(1), "acme"));
  auto theirs = get("/v1/aggregates/Account/private-1", "globex");
  auto never = get("/v1/aggregates/Account/private-2", "globex");
  expect_rejection(theirs, 404, "not_found");
  expect_rejection(never, 404, "not_found");
  // Identical apart from the id the caller gave.
  auto m1 = json_of(theirs)["message"].get<std::string>();
  auto m2 = json_of(never)["message"].get<std::string>();
  EXPECT_EQ(m1.replace(m1.find("private-1"), 9, "private-2"), m2);
  expect_rejection(get("/v1/aggregates/Account/private-1/events", "globex"), 404, "not_found");
  expect_rejection(get("/v1/aggregates/Account/private-2/events", "globex"), 404, "not_found");
}

TEST_F(aggregate_http, reads_validate_tenant_then_type_and_id) {
  expect_rejection(get("/v1/aggregates/Account/x", ""), 400, "invalid_tenant");
  expect_rejection(get("/v1/aggregates/Account/x", "a.b"), 400, "invalid_tenant");
  expect_rejection(get("/v1/aggregates/1Account/x"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/a%2Eb"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/" + std::string(129, 'a')), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Nope/x"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/x/events?after=abc"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/x/events?after=-1"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/x/events?limit=zz"), 400, "invalid_command");
  expect_rejection(get("/v1/aggregates/Account/x/events?limit=0"), 400, "invalid_command");
}

TEST_F(aggregate_http, events_page_with_after_limit_and_next_after) {
  accepted(command("page-1", open_account(0)));
  for (int i = 0; i < 1010; ++i) accepted(command("page-1", deposit(1)));  // versions 1..1011
  auto page = json_of(get("/v1/aggregates/Account/page-1/events?limit=10"));
  ASSERT_EQ(page["events"].size(), 10U);
  EXPECT_EQ(page["events"][0]["version"], 1);
  EXPECT_EQ(page["next_after"], 10);
  page = json_of(get("/v1/aggregates/Account/page-1/events?after=10&limit=5"));
  ASSERT_EQ(page["events"].size(), 5U);
  EXPECT_EQ(page["events"][0]["version"], 11);
  EXPECT_EQ(page["next_after"], 15);
  // Default limit 100.
  page = json_of(get("/v1/aggregates/Account/page-1/events"));
  EXPECT_EQ(page["events"].size(), 100U);
  EXPECT_EQ(page["next_after"], 100);
  // A larger limit is clamped to 1000.
  page = json_of(get("/v1/aggregates/Account/page-1/events?limit=5000"));
  EXPECT_EQ(page["events"].size(), 1000U);
  EXPECT_EQ(page["next_after"], 1000);
  // The last page: no more follow.
  page = json_of(get("/v1/aggregates/Account/page-1/events?after=1000&limit=1000"));
  EXPECT_EQ(page["events"].size(), 11U);
  EXPECT_TRUE(page["next_after"].is_null());
  page = json_of(get("/v1/aggregates/Account/page-1/events?after=1006&limit=5"));
  EXPECT_EQ(page["events"].size(), 5U);
  EXPECT_TRUE(page["next_after"].is_null());
  // Past the end of a known aggregate: an empty page, not 404.
  auto past = get("/v1/aggregates/Account/page-1/events?after=5000");
  ASSERT_TRUE(past);
  EXPECT_EQ(past->status, 200);
  EXPECT_EQ(json_of(past), (json{{"events", json::array()}, {"next_after", nullptr}}));
}

// The state cache's figures are exported at scrape time: what one cached
// aggregate costs and how often the cache answers (bench/RESULTS.md reads them).
TEST_F(aggregate_http, cache_metrics_count_entries_bytes_hits_and_misses) {
  const auto metric = [&](const std::string& name) {
    auto m = _client->Get("/metrics");
    EXPECT_TRUE(m && m->status == 200);
    const auto at = m ? m->body.find("\n" + name + " ") : std::string::npos;
    EXPECT_NE(at, std::string::npos) << name;
    return at == std::string::npos ? -1.0 : std::stod(m->body.substr(at + name.size() + 2));
  };
  EXPECT_EQ(metric("esflow_aggregate_cache_entries"), 0);
  EXPECT_EQ(metric("esflow_aggregate_cache_capacity_bytes"), 256.0 * 1024 * 1024);
  for (const auto* id : {"c-1", "c-2", "c-3"}) accepted(command(id, open_account(10)));
  const auto misses = metric("esflow_aggregate_cache_misses_total");
  const auto hits = metric("esflow_aggregate_cache_hits_total");
  EXPECT_GE(misses, 3) << "a new aggregate is looked up before it exists";
  for (int i = 0; i < 5; ++i) accepted(command("c-1", deposit(1)));
  EXPECT_EQ(metric("esflow_aggregate_cache_entries"), 3);
  EXPECT_GE(metric("esflow_aggregate_cache_hits_total"), hits + 5) << "a cached aggregate is a hit";
  EXPECT_EQ(metric("esflow_aggregate_cache_misses_total"), misses);
  const auto bytes = metric("esflow_aggregate_cache_bytes");
  EXPECT_GT(bytes, 3 * 20.0) << "keys and states are charged";
  EXPECT_LT(bytes, 3 * 4096.0) << "a small account state costs far less than a page";
  EXPECT_EQ(metric("esflow_aggregate_cache_evictions_total"), 0);
}

}  // namespace
}  // namespace esflow
