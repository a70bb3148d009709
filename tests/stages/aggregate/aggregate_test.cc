// The aggregate node end to end: real RocksDB in a temp dir, a real flow graph,
// the shipped Account program.
#include "schemas/ids.h"
#include "tests/stages/aggregate/harness.h"

#include <nlohmann/json.hpp>

namespace esflow::aggregate::testing {
namespace {

using nlohmann::json;

void expect_rejected(const outcome& o, const std::string& code, const std::string& message,
                     bool retryable = false) {
  EXPECT_FALSE(o.accepted) << o.json;
  EXPECT_EQ(o.code, code) << o.json;
  EXPECT_EQ(o.message, message) << o.json;
  EXPECT_EQ(o.result.retryable, retryable) << o.json;
  auto j = json::parse(o.json);
  EXPECT_EQ(j["status"], "rejected");
  EXPECT_EQ(j["code"], code);
  EXPECT_FALSE(j["message"].get<std::string>().empty());
}

void expect_accepted(const outcome& o, std::uint64_t version) {
  EXPECT_TRUE(o.accepted) << o.json;
  EXPECT_EQ(o.result.version, version) << o.json;
}

std::vector<schemas::event> all_events(aggregate_service& s, const std::string& tenant,
                                       const std::string& type, const std::string& id) {
  auto r = s.log().read(tenant, type, id, 0, 100000);
  EXPECT_TRUE(r.ok());
  return r.ok() ? r.value() : std::vector<schemas::event>{};
}

TEST(aggregate_node, bank_scenario_ends_with_balance_75_at_version_4) {
  harness h;
  node_options o;
  o.durability = "fsync";
  auto out = h.run({{account_cmd("acc-1", R"({"type":"open_account","initial_balance":0})")},
                    {account_cmd("acc-1", R"({"type":"deposit","amount":100})")},
                    {account_cmd("acc-1", R"({"type":"deposit","amount":50})")},
                    {account_cmd("acc-1", R"({"type":"withdraw","amount":75})")}},
                   o);
  ASSERT_EQ(out.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    expect_accepted(out[i], i + 1);
    ASSERT_EQ(out[i].result.events.size(), 1u);
    const auto& e = out[i].result.events[0];
    EXPECT_EQ(e.version, i + 1);
    EXPECT_EQ(e.tenant_id, "acme");
    EXPECT_EQ(e.aggregate_type, "Account");
    EXPECT_EQ(e.aggregate_id, "acc-1");
    EXPECT_TRUE(schemas::is_uuid_v7(e.event_id)) << e.event_id;
    EXPECT_TRUE(schemas::is_valid_timestamp(e.timestamp)) << e.timestamp;
    EXPECT_EQ(e.trace_id.size(), 32u);
    EXPECT_FALSE(e.correlation_id.empty());
    EXPECT_FALSE(e.command_id.empty());
    EXPECT_FALSE(out[i].result.duplicate);
  }
  EXPECT_EQ(out[0].result.events[0].event_type, "account_opened");
  EXPECT_EQ(out[3].result.events[0].payload_json, R"({"amount":75,"type":"withdrawn"})");

  auto s = h.open_service();
  ASSERT_TRUE(s);
  auto state = s->get_state("acme", "Account", "acc-1");
  ASSERT_TRUE(state.ok()) << state.err().to_string();
  EXPECT_EQ(state->version, 4u);
  EXPECT_EQ(state->state_json, R"({"balance":75,"open":true})");
  auto events = s->read_events("acme", "Account", "acc-1", 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->events.size(), 4u);
  EXPECT_FALSE(events->next_after.has_value());
  auto page = s->read_events("acme", "Account", "acc-1", 1, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 2u);
  EXPECT_EQ(page->events[0].version, 2u);
  EXPECT_EQ(page->next_after, std::optional<schemas::version_t>(3));
}

TEST(aggregate_node, answers_every_account_rejection_code_with_its_message) {
  harness h;
  auto out = h.run({
      {account_cmd("a", R"({"type":"deposit","amount":10})")},                // 0 not open
      {account_cmd("a", R"({"type":"withdraw","amount":10})")},               // 1 not open
      {account_cmd("a", R"({"type":"close_account"})")},                      // 2 not open
      {account_cmd("a", R"({"type":"open_account","initial_balance":-1})")},  // 3 invalid
      {account_cmd("a", R"({"type":"open_account","initial_balance":10})")},  // 4 ok v1
      {account_cmd("a", R"({"type":"open_account","initial_balance":0})")},   // 5 already open
      {account_cmd("a", R"({"type":"deposit","amount":0})")},                 // 6 invalid
      {account_cmd("a", R"({"type":"deposit","amount":1.5})")},               // 7 invalid
      {account_cmd("a", R"({"type":"withdraw"})")},                           // 8 invalid
      {account_cmd("a", R"({"type":"withdraw","amount":11})")},               // 9 insufficient
      {account_cmd("a", R"({"type":"close_account"})")},                      // 10 balance not zero
      {account_cmd("a", R"({"type":"transfer"})")},                           // 11 unknown
      {account_cmd("a", R"({"type":"withdraw","amount":10})")},               // 12 ok v2
      {account_cmd("a", R"({"type":"close_account"})")},                      // 13 ok v3
  });
  ASSERT_EQ(out.size(), 14u);
  expect_rejected(out[0], "account_not_open", "the account is not open");
  expect_rejected(out[1], "account_not_open", "the account is not open");
  expect_rejected(out[2], "account_not_open", "the account is not open");
  expect_rejected(out[3], "invalid_amount", "initial_balance -1 is outside 0..9007199254740991");
  expect_accepted(out[4], 1);
  expect_rejected(out[5], "account_already_open", "the account is already open");
  expect_rejected(out[6], "invalid_amount", "amount 0 is outside 1..9007199254740991");
  expect_rejected(out[7], "invalid_amount", "amount must be an integer, got 1.5");
  expect_rejected(out[8], "invalid_amount", "amount must be an integer, got nothing");
  expect_rejected(out[9], "insufficient_funds", "balance 10 < 11");
  expect_rejected(out[10], "balance_not_zero", "balance 10 must be 0 to close the account");
  expect_rejected(out[11], "unknown_command", R"(unknown command type "transfer")");
  expect_accepted(out[12], 2);
  expect_accepted(out[13], 3);
  auto s = h.open_service();
  EXPECT_EQ(all_events(*s, "acme", "Account", "a").size(), 3u);  // rejections stored nothing
}

TEST(aggregate_node, answers_contract_rejection_codes_in_validation_order) {
  harness h;
  node_options o;
  o.hosted = "[acme, other]";
  command_in no_tenant{account_cmd("a", R"({"type":"noop"})"), std::nullopt};
  command_in empty_tenant{account_cmd("a", R"({"type":"noop"})"), std::string()};
  command_in bad_tenant{"not json at all", std::string("a.b")};
  command_in reserved{account_cmd("a", R"({"type":"noop"})"), std::string("_")};
  command_in foreign{account_cmd("a", R"({"type":"noop"})"), std::string("elsewhere")};
  command_in not_json{"{not json", std::string("acme")};
  command_in no_payload{R"({"aggregate_type":"Account","aggregate_id":"a"})"};
  command_in unknown_type{R"({"aggregate_type":"Order","aggregate_id":"a","payload":{"type":"x"}})"};
  command_in too_large{account_cmd("a", R"({"type":"deposit","pad":")" + std::string(5000, 'x') + "\"}")};
  command_in body_tenant{account_cmd("a", R"({"type":"deposit","amount":1})", "", R"(,"tenant_id":"other")")};
  command_in subject_type{account_cmd("a", R"({"type":"deposit","amount":1})")};
  subject_type.subject_type = "Order";
  command_in subject_id{account_cmd("a", R"({"type":"deposit","amount":1})")};
  subject_id.subject_type = "Account";
  subject_id.subject_id = "b";
  command_in bad_key{account_cmd("a", R"({"type":"deposit","amount":1})")};
  bad_key.idempotency_key = "no spaces allowed";
  command_in bad_id{account_cmd("a b", R"({"type":"deposit","amount":1})")};
  auto out = h.run({no_tenant, empty_tenant, bad_tenant, reserved, foreign, not_json, no_payload,
                    unknown_type, too_large, body_tenant, subject_type, subject_id, bad_key, bad_id},
                   o);
  ASSERT_EQ(out.size(), 14u);
  expect_rejected(out[0], "invalid_tenant", "tenant id is required (x-tenant-id)");
  expect_rejected(out[1], "invalid_tenant", "tenant id is required");
  // The tenant is checked before the body is even parsed.
  expect_rejected(out[2], "invalid_tenant", "tenant id must match [A-Za-z0-9_-]{1,64}");
  expect_rejected(out[3], "invalid_tenant", "tenant id '_' is reserved");
  EXPECT_EQ(out[4].code, "tenant_not_hosted");
  EXPECT_EQ(out[4].message.rfind("tenant 'elsewhere' is not hosted by this node (pipeline 'agg_test' at ", 0),
            0u)
      << out[4].message;
  EXPECT_EQ(out[5].code, "invalid_command");
  EXPECT_FALSE(out[5].message.empty());
  expect_rejected(out[6], "invalid_command", "field 'payload' is required");
  expect_rejected(out[7], "invalid_command",
                  "unknown aggregate type 'Order' (this node serves: Account, Faulty)");
  EXPECT_EQ(out[8].code, "payload_too_large");
  EXPECT_NE(out[8].message.find("exceeds the limit of 4096 bytes"), std::string::npos) << out[8].message;
  expect_rejected(out[9], "tenant_access_denied", "the body's tenant_id differs from the request's tenant");
  expect_rejected(out[10], "invalid_command",
                  "field 'aggregate_type' 'Account' differs from the subject's 'Order'");
  expect_rejected(out[11], "invalid_command", "field 'aggregate_id' 'a' differs from the subject's 'b'");
  expect_rejected(out[12], "invalid_command", "field 'Idempotency-Key' must match [A-Za-z0-9_-]{1,128}");
  expect_rejected(out[13], "invalid_command", "field 'aggregate_id' must match [A-Za-z0-9_-]{1,128}");
}

TEST(aggregate_node, generates_missing_ids_and_takes_the_idempotency_key) {
  harness h;
  command_in no_ids{R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":5}})"};
  command_in keyed{account_cmd("k-1", R"({"type":"open_account","initial_balance":5})")};
  keyed.idempotency_key = "key-123";
  command_in subject{R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":1}})"};
  subject.subject_type = "Account";
  subject.subject_id = "from-subject";
  auto out = h.run({no_ids, keyed, subject});
  ASSERT_EQ(out.size(), 3u);
  expect_accepted(out[0], 1);
  EXPECT_TRUE(schemas::is_uuid_v7(out[0].result.aggregate_id)) << out[0].result.aggregate_id;
  EXPECT_TRUE(schemas::is_uuid_v7(out[0].result.events.at(0).command_id));
  expect_accepted(out[1], 1);
  EXPECT_EQ(out[1].result.events.at(0).command_id, "key-123");
  expect_accepted(out[2], 1);
  EXPECT_EQ(out[2].result.aggregate_id, "from-subject");
}

void expect_contiguous(aggregate_service& s, const std::string& id, std::size_t n) {
  auto events = all_events(s, "acme", "Account", id);
  ASSERT_EQ(events.size(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(events[i].version, i + 1);
}

void many_commands_to_one_aggregate(std::size_t n, const std::string& durability) {
  harness h;
  node_options o;
  o.durability = durability;
  std::vector<command_in> in;
  in.push_back({account_cmd("hot", R"({"type":"open_account","initial_balance":0})")});
  for (std::size_t i = 1; i < n; ++i) in.push_back({account_cmd("hot", R"({"type":"deposit","amount":1})")});
  auto out = h.run(in, o);
  ASSERT_EQ(out.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(out[i].accepted) << i << ": " << out[i].json;
    ASSERT_EQ(out[i].result.version, i + 1) << i;
  }
  auto s = h.open_service();
  expect_contiguous(*s, "hot", n);
  auto state = s->get_state("acme", "Account", "hot");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->state_json, R"({"balance":)" + std::to_string(n - 1) + R"(,"open":true})");
}

TEST(aggregate_node, ten_commands_to_one_aggregate_get_versions_1_to_10) {
  many_commands_to_one_aggregate(10, "fsync");
}

TEST(aggregate_node, thousand_commands_to_one_aggregate_get_contiguous_versions) {
  many_commands_to_one_aggregate(1000, "relaxed");
}

TEST(aggregate_node, many_aggregates_in_parallel_each_contiguous) {
  harness h;
  std::vector<command_in> in;
  for (int a = 0; a < 50; ++a)
    in.push_back({account_cmd("p" + std::to_string(a), R"({"type":"open_account","initial_balance":0})")});
  for (int round = 0; round < 10; ++round)
    for (int a = 0; a < 50; ++a)
      in.push_back({account_cmd("p" + std::to_string(a), R"({"type":"deposit","amount":2})")});
  auto out = h.run(in);
  for (const auto& o : out) ASSERT_TRUE(o.accepted) << o.json;
  auto s = h.open_service();
  for (int a = 0; a < 50; ++a) expect_contiguous(*s, "p" + std::to_string(a), 11);
}

TEST(aggregate_node, resent_command_id_is_a_duplicate_and_other_content_is_reused) {
  harness h;
  const auto open = account_cmd("i-1", R"({"type":"open_account","initial_balance":7})", "cmd-1");
  auto first = h.run({{open}, {account_cmd("i-1", R"({"type":"deposit","amount":1})", "cmd-2")}});
  ASSERT_EQ(first.size(), 2u);
  expect_accepted(first[0], 1);
  expect_accepted(first[1], 2);
  // In another run (a restart), and twice in flight at once.
  auto again = h.run({{open},
                      {open},
                      {account_cmd("i-1", R"({"type":"open_account","initial_balance":8})", "cmd-1")},
                      {account_cmd("other", R"({"type":"open_account","initial_balance":7})", "cmd-1")},
                      {account_cmd("i-1", R"({"type":"deposit","amount":1})", "cmd-3")},
                      {account_cmd("i-1", R"({"type":"deposit","amount":1})", "cmd-3")}});
  ASSERT_EQ(again.size(), 6u);
  for (int i : {0, 1}) {
    expect_accepted(again[i], 1);
    EXPECT_TRUE(again[i].result.duplicate);
    ASSERT_EQ(again[i].result.events.size(), 1u);
    EXPECT_EQ(again[i].result.events[0].event_id, first[0].result.events[0].event_id);
    EXPECT_EQ(json::parse(again[i].json)["duplicate"], true);
  }
  EXPECT_EQ(again[2].code, "command_id_reused");
  EXPECT_FALSE(again[2].message.empty());
  EXPECT_EQ(again[2].result.retryable, false);
  EXPECT_EQ(again[3].code, "command_id_reused");
  expect_accepted(again[4], 3);
  EXPECT_FALSE(again[4].result.duplicate);
  expect_accepted(again[5], 3);
  EXPECT_TRUE(again[5].result.duplicate);
  auto s = h.open_service();
  expect_contiguous(*s, "i-1", 3);  // nothing appended by the duplicates
  EXPECT_TRUE(all_events(*s, "acme", "Account", "other").empty());
}

TEST(aggregate_node, same_aggregate_id_in_two_tenants_is_two_aggregates) {
  harness h;
  command_in a{account_cmd("shared", R"({"type":"open_account","initial_balance":1})", "c-1"),
               std::string("t1")};
  command_in b{account_cmd("shared", R"({"type":"open_account","initial_balance":2})", "c-1"),
               std::string("t2")};
  command_in a2{account_cmd("shared", R"({"type":"deposit","amount":1})"), std::string("t1")};
  auto out = h.run({a, b, a2});
  ASSERT_EQ(out.size(), 3u);
  expect_accepted(out[0], 1);
  expect_accepted(out[1], 1);  // the same command id in another tenant is another command
  EXPECT_FALSE(out[1].result.duplicate);
  expect_accepted(out[2], 2);
  auto s = h.open_service();
  EXPECT_EQ(s->get_state("t1", "Account", "shared")->state_json, R"({"balance":2,"open":true})");
  EXPECT_EQ(s->get_state("t2", "Account", "shared")->state_json, R"({"balance":2,"open":true})");
  EXPECT_EQ(s->get_state("t2", "Account", "shared")->version, 1u);
  auto none = s->get_state("t3", "Account", "shared");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.err().code, errc::not_found);
  EXPECT_EQ(none.err().message, "aggregate Account/shared has no events");
}

TEST(aggregate_node, single_tenant_mode_takes_the_empty_tenant_only) {
  harness h;
  node_options o;
  o.tenancy = "single";
  command_in ok{account_cmd("s-1", R"({"type":"open_account","initial_balance":3})"), std::nullopt};
  command_in empty_body{account_cmd("s-1", R"({"type":"deposit","amount":3})", "", R"(,"tenant_id":"")"),
                        std::string()};
  command_in named{account_cmd("s-1", R"({"type":"deposit","amount":3})"), std::string("acme")};
  command_in named_body{account_cmd("s-1", R"({"type":"deposit","amount":3})", "", R"(,"tenant_id":"acme")"),
                        std::string()};
  auto out = h.run({ok, empty_body, named, named_body}, o);
  ASSERT_EQ(out.size(), 4u);
  expect_accepted(out[0], 1);
  EXPECT_EQ(out[0].result.events[0].tenant_id, "");
  expect_accepted(out[1], 2);
  expect_rejected(out[2], "invalid_tenant", "tenant id must be empty in single-tenant mode");
  expect_rejected(out[3], "invalid_tenant",
                  "tenant id must be empty in single-tenant mode (field 'tenant_id')");
}

TEST(aggregate_node, program_errors_are_program_error_and_store_nothing) {
  harness h;
  auto faulty = [](const std::string& type) {
    return command_in{R"({"aggregate_type":"Faulty","aggregate_id":"f","payload":{"type":")" + type + "\"}}"};
  };
  auto out = h.run({faulty("raise"), faulty("loop"), faulty("alloc"), faulty("noop"), faulty("bump"),
                    faulty("noop"), faulty("nope")});
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[0].code, "program_error");
  EXPECT_NE(out[0].message.find("faulty.lua:9: boom"), std::string::npos) << out[0].message;
  EXPECT_EQ(out[1].code, "program_error");
  EXPECT_NE(out[1].message.find("ran out of gas after 100000 instructions"), std::string::npos)
      << out[1].message;
  EXPECT_EQ(out[2].code, "program_error");
  EXPECT_NE(out[2].message.find("out of memory"), std::string::npos) << out[2].message;
  for (int i : {0, 1, 2}) EXPECT_FALSE(out[i].result.retryable);
  // No events: accepted at the unchanged version, nothing stored.
  expect_accepted(out[3], 0);
  EXPECT_TRUE(out[3].result.events.empty());
  expect_accepted(out[4], 1);
  expect_accepted(out[5], 1);
  expect_rejected(out[6], "unknown_command", "unknown command type nope");
  auto s = h.open_service();
  EXPECT_EQ(all_events(*s, "acme", "Faulty", "f").size(), 1u);
}

TEST(aggregate_node, snapshots_every_n_versions_and_all_rehydration_paths_agree) {
  harness h;
  node_options o;
  o.snapshot_every = 5;
  std::vector<command_in> in = {{account_cmd("snap", R"({"type":"open_account","initial_balance":1})")}};
  for (int i = 0; i < 5; ++i) in.push_back({account_cmd("snap", R"({"type":"deposit","amount":3})")});
  auto out = h.run(in, o);  // versions 1..6
  for (const auto& r : out) ASSERT_TRUE(r.accepted) << r.json;
  {
    auto s = h.open_service(o);
    auto snap = s->snapshots().get("acme", "Account", "snap");
    ASSERT_TRUE(snap.ok() && snap.value());
    EXPECT_EQ(snap.value()->version, 5u);
    EXPECT_EQ(snap.value()->state_json, R"({"balance":13,"open":true})");
    EXPECT_EQ(snap.value()->tenant_id, "acme");
  }
  in.clear();
  for (int i = 0; i < 6; ++i) in.push_back({account_cmd("snap", R"({"type":"withdraw","amount":1})")});
  out = h.run(in, o);  // versions 7..12
  for (const auto& r : out) ASSERT_TRUE(r.accepted) << r.json;
  auto s = h.open_service(o);
  auto snap = s->snapshots().get("acme", "Account", "snap");
  ASSERT_TRUE(snap.ok() && snap.value());
  EXPECT_EQ(snap.value()->version, 10u);
  EXPECT_GT(snap.value()->log_position, 0u);
  const auto& type = *s->find_type("Account");
  runtime::sandbox sb;
  auto full = s->load("acme", type, "snap", sb, false);
  auto from_snapshot = s->load("acme", type, "snap", sb, true);
  ASSERT_TRUE(full.ok() && from_snapshot.ok());
  EXPECT_EQ(full->replayed, 12u);
  EXPECT_EQ(from_snapshot->replayed, 2u);  // 11 and 12 after the snapshot at 10
  EXPECT_EQ(full->head.version, 12u);
  EXPECT_EQ(from_snapshot->head.version, 12u);
  EXPECT_EQ(full->head.state_json, R"({"balance":10,"open":true})");
  EXPECT_EQ(from_snapshot->head.state_json, full->head.state_json);
  // Snapshot only (no events after it): write one at the head and load again.
  schemas::snapshot at_head{
      "acme", "Account", "snap", 12, 99, full->head.state_json, schemas::now_timestamp()};
  ASSERT_TRUE(s->snapshots().put(at_head).ok());
  auto snapshot_only = s->load("acme", type, "snap", sb, true);
  ASSERT_TRUE(snapshot_only.ok());
  EXPECT_EQ(snapshot_only->replayed, 0u);
  EXPECT_EQ(snapshot_only->head.state_json, full->head.state_json);
}

TEST(aggregate_node, rehydration_refuses_a_snapshot_of_another_tenant) {
  harness h;
  auto s = h.open_service();
  schemas::snapshot foreign{
      "intruder", "Account", "x", 3, 1, R"({"balance":1,"open":true})", "2026-01-01T00:00:00.000Z"};
  // Stored under its own tenant's key; read back as acme's it must never be used.
  ASSERT_TRUE(s->snapshots().put(foreign).ok());
  runtime::sandbox sb;
  auto r = s->rehydrate("acme", *s->find_type("Account"), "x", sb);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->head.version, 0u);  // keys separate tenants: acme sees nothing
}

TEST(aggregate_node, retries_a_version_conflict_then_answers_it_when_retries_run_out) {
  harness h;
  auto out = h.run({{account_cmd("c", R"({"type":"open_account","initial_balance":0})")}});
  expect_accepted(out[0], 1);
  // Another writer appends behind the node's cache: the next decision is made
  // on a stale version and meets a conflict at commit.
  auto behind = [](aggregate_service& s) {
    runtime::sandbox sb;
    ASSERT_TRUE(s.rehydrate("acme", *s.find_type("Account"), "c", sb).ok());  // warm the cache at v1
    storage::append_request r{
        "acme", "Account", "c", "outside-1", 1, storage::request_hash("Account", "c", "1"), {}};
    schemas::event e;
    e.event_id = schemas::new_uuid_v7();
    e.event_type = "deposited";
    e.payload_json = R"({"amount":5,"type":"deposited"})";
    e.timestamp = schemas::now_timestamp();
    r.events.push_back(e);
    auto a = storage::append_and_wait(s.log(), r);
    ASSERT_TRUE(a.ok());
  };
  out = h.run({{account_cmd("c", R"({"type":"deposit","amount":1})")}}, {}, behind);
  expect_accepted(out[0], 3);  // decided on v1, conflict at v2, re-decided and committed at v3
  EXPECT_EQ(out[0].result.events.at(0).version, 3u);
  {
    auto s = h.open_service();
    EXPECT_EQ(s->get_state("acme", "Account", "c")->state_json, R"({"balance":6,"open":true})");
  }
  node_options no_retry;
  no_retry.max_retries = 0;
  auto behind_again = [](aggregate_service& s) {
    runtime::sandbox sb;
    ASSERT_TRUE(s.rehydrate("acme", *s.find_type("Account"), "c", sb).ok());
    storage::append_request r{
        "acme", "Account", "c", "outside-2", 3, storage::request_hash("Account", "c", "2"), {}};
    schemas::event e;
    e.event_id = schemas::new_uuid_v7();
    e.event_type = "deposited";
    e.payload_json = R"({"amount":1,"type":"deposited"})";
    e.timestamp = schemas::now_timestamp();
    r.events.push_back(e);
    ASSERT_TRUE(storage::append_and_wait(s.log(), r).ok());
  };
  out = h.run({{account_cmd("c", R"({"type":"deposit","amount":1})")}}, no_retry, behind_again);
  expect_rejected(out[0], "version_conflict",
                  "aggregate Account/c kept changing: expected version 3, actual 4 (after 0 retries)", true);
}

TEST(aggregate_node, file_ingest_writes_command_results_to_a_sink) {
  harness h;
  const auto input = h.dir() + "/commands.ndjson";
  const auto results = h.dir() + "/results.ndjson";
  {
    std::ofstream f(input);
    f << R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"f-1","command_id":"c1","payload":{"type":"open_account","initial_balance":10}})"
      << "\n"
      << R"({"aggregate_type":"Account","aggregate_id":"f-1","payload":{"type":"deposit","amount":1}})"
      << "\n"
      << R"({"tenant_id":"acme","aggregate_type":"Account","aggregate_id":"f-1","command_id":"c2","payload":{"type":"withdraw","amount":100}})"
      << "\n";
  }
  auto text = h.pipeline_text({}, "  source: { kind: source.file, path: " + input + " }\n") +
              "  results: { kind: sink.file, path: " + results + " }\n" +
              "flow:\n  - source -> tenant -> decode -> rehydrate -> decide -> commit -> answer -> results\n"
              "  - \"*.error -> answer\"\n";
  auto spec = graph::load_pipeline_text(text, "file.yaml", h.dir(), h.registry());
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  auto served = h.serve(std::move(spec).value());
  ASSERT_TRUE(served);
  cli::start_served(*served);
  auto& n = *cli::served_host(*served).nodes().front();
  ASSERT_TRUE(n.wait_finished(std::chrono::steady_clock::now() + std::chrono::seconds(60)));
  ASSERT_TRUE(cli::stop_served(*served).ok());
  served.reset();
  std::ifstream f(results);
  std::vector<json> lines;
  for (std::string line; std::getline(f, line) && lines.size() < 10;) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  std::map<std::string, json> by_code;
  for (auto& l : lines) by_code[l["status"] == "accepted" ? "accepted" : l["code"].get<std::string>()] = l;
  EXPECT_EQ(by_code["accepted"]["version"], 1);
  EXPECT_EQ(by_code["invalid_tenant"]["message"], "tenant id is required (field 'tenant_id')");
  EXPECT_EQ(by_code["insufficient_funds"]["message"], "balance 10 < 100");
  EXPECT_EQ(by_code["insufficient_funds"]["retryable"], false);
}

TEST(aggregate_node, shipped_pipeline_file_loads) {
  harness h;
  graph::kind_registry reg;
  stages::register_builtin_stages(reg);
  auto spec = graph::load_pipeline_file(source_dir() + "/pipelines/aggregate.yaml", reg);
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  EXPECT_EQ(spec->name, "aggregate");
  EXPECT_TRUE(spec->sections.count("aggregates"));
}

TEST(aggregate_node, bad_aggregates_section_names_file_and_line) {
  harness h;
  runtime::program_cache programs;
  auto node = YAML::Load("Account: { program: nowhere.lua, snapshot_evry: 5 }\n1bad: { program: x.lua }\n");
  auto r = parse_aggregates(node, "p.yaml", h.dir(), programs);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_config);
  EXPECT_NE(r.err().message.find("p.yaml:1: aggregates: 'Account': unknown key 'snapshot_evry' (did you mean "
                                 "'snapshot_every'?)"),
            std::string::npos)
      << r.err().message;
  EXPECT_NE(r.err().message.find("p.yaml:2: aggregates: '1bad': an aggregate type must match"),
            std::string::npos)
      << r.err().message;
  auto missing =
      parse_aggregates(YAML::Load("Account: { program: nowhere.lua }"), "p.yaml", h.dir(), programs);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.err().message.find("p.yaml:1: aggregates: 'Account': program '"), std::string::npos)
      << missing.err().message;
}

TEST(aggregate_node, keyed_stages_require_key_message) {
  harness h;
  auto text = h.pipeline_text({}, "  feed: { kind: test.feed }\n");
  const auto pos = text.find("key: message, concurrency: 4, cache_mb");
  ASSERT_NE(pos, std::string::npos);
  text.replace(pos, 14, "");
  text +=
      "  ack: { kind: ack }\nflow:\n  - feed -> tenant -> decode -> rehydrate -> decide -> commit -> answer "
      "-> ack\n"
      "  - \"*.error -> answer\"\n";
  auto spec = graph::load_pipeline_text(text, "k.yaml", h.dir(), h.registry());
  ASSERT_TRUE(spec.ok()) << spec.err().message;
  cli::serve_options so;
  so.registry = &h.registry();
  so.prepare = [](esflow::service_registry& services) { services.put<feed>("", std::make_shared<feed>()); };
  auto n = cli::serve_loaded({std::move(spec).value()}, so);
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.err().message.find("stage 'rehydrate' (aggregate.rehydrate) needs 'key: message'"),
            std::string::npos)
      << n.err().message;
}

double metric(aggregate_service& s, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  double total = 0;
  for (const auto& family : s.metrics().registry().Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (match)
        total += family.type == prometheus::MetricType::Histogram ? double(m.histogram.sample_count)
                                                                  : m.counter.value;
    }
  }
  return total;
}

TEST(aggregate_node, counts_commands_in_domain_metrics) {
  harness h;
  auto check = [](aggregate_service& s) {
    EXPECT_EQ(metric(s, "esflow_aggregate_commands_total",
                     {{"aggregate_type", "Account"}, {"tenant_id", "acme"}, {"outcome", "accepted"}}),
              1);
    EXPECT_EQ(metric(s, "esflow_aggregate_commands_total", {{"tenant_id", "acme"}, {"outcome", "rejected"}}),
              1);
    EXPECT_EQ(
        metric(s, "esflow_aggregate_commands_total",
               {{"aggregate_type", "unknown"}, {"tenant_id", "unknown"}, {"outcome", "invalid_tenant"}}),
        1);
    EXPECT_EQ(metric(s, "esflow_aggregate_tenant_errors_total", {{"code", "invalid_tenant"}}), 1);
    EXPECT_EQ(metric(s, "esflow_aggregate_command_duration_seconds", {}), 3);
    EXPECT_GE(metric(s, "esflow_aggregate_rehydration_duration_seconds", {{"cache", "miss"}}), 1);
  };
  auto out = h.run({{account_cmd("m", R"({"type":"open_account","initial_balance":0})")},
                    {account_cmd("m", R"({"type":"withdraw","amount":1})")},
                    {account_cmd("m", R"({"type":"noop"})"), std::nullopt}},
                   {}, {}, check);
  ASSERT_EQ(out.size(), 3u);
}

TEST(aggregate_node, caps_the_tenant_label) {
  aggregate_metrics m(nullptr, 2);
  EXPECT_EQ(m.tenant_label("a"), "a");
  EXPECT_EQ(m.tenant_label("b"), "b");
  EXPECT_EQ(m.tenant_label("c"), "other");
  EXPECT_EQ(m.tenant_label("a"), "a");
  EXPECT_EQ(m.tenant_label(""), "other");
}

}  // namespace
}  // namespace esflow::aggregate::testing
