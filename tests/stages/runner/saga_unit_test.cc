// The saga path's parts on their own: the `sagas:` checks with file:line,
// inputs from commits and workflow messages, and one transition of the
// shipped Transfer saga (deterministic command ids, malformed results,
// schedules and cancels, a done instance takes no more inputs).
#include "runtime/sandbox.h"
#include "schemas/ids.h"
#include "stages/runner/saga_input.h"
#include "stages/runner/saga_spec.h"
#include "stages/runner/saga_step.h"
#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace esflow::runner {
namespace {

using nlohmann::json;

std::string programs_dir() { return std::string(ESFLOW_SOURCE_DIR) + "/pipelines"; }

result<std::vector<saga_config>> parse(const std::string& yaml, runtime::program_cache& programs) {
  return parse_sagas(YAML::Load(yaml)["sagas"], "runner.yaml", programs_dir(), programs);
}

std::vector<saga_config> transfer_saga(runtime::program_cache& programs) {
  auto s = parse(R"(sagas:
  Transfer:
    program: programs/transfer_saga.lua
    triggers: [{ aggregate_type: Transfer, events: [transfer_requested] }]
)",
                 programs);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.err().to_string());
  return s.ok() ? s.value() : std::vector<saga_config>{};
}

schemas::commit transfer_requested(const std::string& tenant, const std::string& id, std::int64_t amount) {
  schemas::commit c;
  c.tenant_id = tenant;
  c.aggregate_type = "Transfer";
  c.aggregate_id = id;
  c.command_id = "cmd-" + id;
  c.first_version = 1;
  schemas::event e;
  e.tenant_id = tenant;
  e.event_id = "ev-" + id;
  e.aggregate_type = "Transfer";
  e.aggregate_id = id;
  e.version = 1;
  e.event_type = "transfer_requested";
  e.payload_json =
      json{{"type", "transfer_requested"}, {"from", "acc-a"}, {"to", "acc-b"}, {"amount", amount}}.dump();
  e.command_id = c.command_id;
  e.trace_id = "0123456789abcdef0123456789abcdef";
  c.events.push_back(e);
  return c;
}

TEST(saga_spec, every_problem_is_reported_with_file_and_line) {
  runtime::program_cache programs;
  struct bad {
    std::string yaml, expected;
  };
  for (const auto& b : std::vector<bad>{
           {"sagas: [1]", "runner.yaml:1: 'sagas' must be a mapping"},
           {"sagas:\n  9bad: { program: programs/transfer_saga.lua }", "a saga name must match"},
           {"sagas:\n  T: { program: programs/transfer_saga.lua, triggers: [{aggregate_type: Transfer}], "
            "colour: red }",
            "runner.yaml:2: sagas: 'T': unknown key 'colour'"},
           {"sagas:\n  T: { program: programs/transfer_saga.lua }", "missing 'triggers'"},
           {"sagas:\n  T: { triggers: [{aggregate_type: Transfer}] }", "missing 'program'"},
           {"sagas:\n  T: { program: programs/nope.lua, triggers: [{aggregate_type: Transfer}] }",
            "nope.lua"},
           {"sagas:\n  T: { program: programs/account.lua, triggers: [{aggregate_type: Transfer}] }",
            "defines no on_event(state, input)"},
           {"sagas:\n  T: { program: programs/transfer_saga.lua, triggers: [{aggregate_type: Transfer}], "
            "correlate_by: state.x }",
            "'correlate_by' must be"},
           {"sagas:\n  T: { program: programs/transfer_saga.lua, triggers: [{aggregate_type: 1x}] }",
            "is not an aggregate type"},
           {"sagas:\n  T: { program: programs/transfer_saga.lua, triggers: [{aggregate_type: T, evnts: [a]}] "
            "}",
            "unknown trigger key 'evnts'"},
       }) {
    auto r = parse(b.yaml, programs);
    ASSERT_FALSE(r.ok()) << b.yaml;
    EXPECT_EQ(r.err().code, errc::invalid_config);
    EXPECT_NE(r.err().message.find(b.expected), std::string::npos) << r.err().message;
  }
}

TEST(saga_input, a_trigger_event_addresses_the_instance_by_its_correlation_field) {
  runtime::program_cache programs;
  auto sagas = transfer_saga(programs);
  ASSERT_EQ(sagas.size(), 1U);
  auto in = inputs_of_commit(sagas, transfer_requested("acme", "t-1", 5));
  ASSERT_EQ(in.size(), 1U);
  EXPECT_EQ(in[0].tenant, "acme");
  EXPECT_EQ(in[0].saga, "Transfer");
  EXPECT_EQ(in[0].correlation_id, "t-1");
  EXPECT_EQ(in[0].input_id, "ev-t-1");
  EXPECT_EQ(json::parse(in[0].input_json)["kind"], "event");
  // Another aggregate type or event type starts nothing.
  auto other = transfer_requested("acme", "t-2", 5);
  other.events[0].event_type = "transfer_completed";
  EXPECT_TRUE(inputs_of_commit(sagas, other).empty());
  other.aggregate_type = "Account";
  EXPECT_TRUE(inputs_of_commit(sagas, other).empty());
}

TEST(saga_input, workflow_messages_are_checked_against_their_subject) {
  runtime::program_cache programs;
  auto sagas = transfer_saga(programs);
  json body = {{"tenant_id", "acme"},        {"saga", "Transfer"},     {"correlation_id", "t-1"},
               {"command_id", "w123"},       {"status", "accepted"},   {"events", json::array()},
               {"command_type", "withdraw"}, {"aggregate_id", "acc-a"}};
  auto ok = input_of_workflow_message(sagas, "tenant.acme.command_result.Transfer", body.dump());
  ASSERT_TRUE(ok.ok() && ok.value());
  EXPECT_EQ(ok.value()->input_id, "cmdresult:w123");
  EXPECT_EQ(json::parse(ok.value()->input_json)["command_type"], "withdraw");
  // The body's tenant must be the subject's: no cross-tenant input.
  auto spoofed = input_of_workflow_message(sagas, "tenant.other.command_result.Transfer", body.dump());
  ASSERT_FALSE(spoofed.ok());
  EXPECT_EQ(spoofed.err().code, errc::tenant_access_denied);
  EXPECT_FALSE(input_of_workflow_message(sagas, "tenant.acme.command_result.Transfer", "{not json").ok());
  body["saga"] = "Unknown";
  auto unknown = input_of_workflow_message(sagas, "tenant.acme.command_result.Transfer", body.dump());
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown.value()) << "a saga this runner does not run is not its input";
}

TEST(saga_input, each_workflow_kind_gives_the_program_its_fields_and_a_malformed_value_refuses_it) {
  runtime::program_cache programs;
  auto sagas = transfer_saga(programs);
  const json result = {
      {"tenant_id", "acme"},     {"saga", "Transfer"},         {"correlation_id", "t-1"},
      {"command_id", "w1"},      {"status", "rejected"},       {"code", "insufficient_funds"},
      {"message", "a \"b\"\n"},  {"events", "not an array"},   {"aggregate_type", "Account"},
      {"aggregate_id", "acc-a"}, {"command_type", "withdraw"}, {"trace_id", "x"}};
  auto r = input_of_workflow_message(sagas, "tenant.acme.command_result.Transfer", result.dump());
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(json::parse(r.value()->input_json), json({{"kind", "command_result"},
                                                      {"command_id", "w1"},
                                                      {"status", "rejected"},
                                                      {"code", "insufficient_funds"},
                                                      {"message", "a \"b\"\n"},
                                                      {"events", json::array()},
                                                      {"aggregate_type", "Account"},
                                                      {"aggregate_id", "acc-a"},
                                                      {"command_type", "withdraw"}}));
  EXPECT_EQ(r.value()->trace_id, "x");

  const json effect = {{"tenant_id", "acme"},     {"saga", "Transfer"},
                       {"correlation_id", "t-1"}, {"command_id", "w2"},
                       {"effect", "notify"},      {"result_type", "failed"},
                       {"error", "HTTP 400"},     {"payload", {{"n", {1, 2.5, nullptr, "x"}}}}};
  auto e = input_of_workflow_message(sagas, "tenant.acme.effect_result.Transfer", effect.dump());
  ASSERT_TRUE(e.ok() && e.value());
  EXPECT_EQ(e.value()->input_id, "result:w2");
  EXPECT_EQ(json::parse(e.value()->input_json), json({{"kind", "effect_result"},
                                                      {"command_id", "w2"},
                                                      {"effect", "notify"},
                                                      {"result_type", "failed"},
                                                      {"payload", effect["payload"]},
                                                      {"error", "HTTP 400"}}));

  const json reminder = {{"tenant_id", "acme"},    {"saga", "Transfer"}, {"correlation_id", "t-1"},
                         {"schedule_key", "rk-1"}, {"name", "timeout"},  {"due_at", "2026-12-06T00:00:00Z"}};
  auto m = input_of_workflow_message(sagas, "tenant.acme.reminder.Transfer", reminder.dump());
  ASSERT_TRUE(m.ok() && m.value());
  EXPECT_EQ(m.value()->input_id, "rk-1");
  EXPECT_EQ(json::parse(m.value()->input_json), json({{"kind", "reminder"},
                                                      {"name", "timeout"},
                                                      {"due_at", "2026-12-06T00:00:00Z"},
                                                      {"payload", json::object()}}));

  // A malformed value deep inside, an array body, a missing id: refused with a clear code.
  auto deep = input_of_workflow_message(
      sagas, "tenant.acme.effect_result.Transfer",
      R"({"tenant_id":"acme","saga":"Transfer","correlation_id":"t-1","command_id":"w3","payload":{"a":tru}})");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.err().code, errc::invalid_command);
  EXPECT_FALSE(input_of_workflow_message(sagas, "tenant.acme.effect_result.Transfer", "[1]").ok());
  auto no_id = effect;
  no_id.erase("command_id");
  auto missing = input_of_workflow_message(sagas, "tenant.acme.effect_result.Transfer", no_id.dump());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::invalid_command);
}

TEST(saga_step, the_transfer_saga_is_deterministic_and_its_command_ids_are_derived) {
  runtime::program_cache programs;
  auto sagas = transfer_saga(programs);
  ASSERT_EQ(sagas.size(), 1U);
  auto input = inputs_of_commit(sagas, transfer_requested("acme", "t-1", 25)).at(0);
  runtime::sandbox a, b;
  auto first = run_step(sagas[0], a, std::nullopt, input, 1000);
  auto again = run_step(sagas[0], b, std::nullopt, input, 1000);
  ASSERT_TRUE(first.ok()) << first.err().to_string();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->record_json, again->record_json);
  ASSERT_EQ(first->work.size(), 1U);
  EXPECT_EQ(first->work[0].command_id, again->work[0].command_id);
  EXPECT_EQ(first->work[0].command_id, derive_command_id("acme", "Transfer", "t-1", "ev-t-1", 0));
  EXPECT_TRUE(schemas::is_valid_command_id(first->work[0].command_id));
  auto item = json::parse(first->work[0].item_json);
  EXPECT_EQ(item["aggregate_id"], "acc-a");
  EXPECT_EQ(item["payload"], json({{"type", "withdraw"}, {"amount", 25}}));
  EXPECT_EQ(item["correlation_id"], "t-1");
  // The timeout: 30 s after the step's clock.
  ASSERT_EQ(first->add.size(), 1U);
  EXPECT_EQ(first->add[0].key.due_ms, 31000U);
  EXPECT_EQ(first->add[0].key.name, "timeout");
  // Another input, another id; another tenant, another id.
  EXPECT_NE(derive_command_id("acme", "Transfer", "t-1", "ev-x", 0), first->work[0].command_id);
  EXPECT_NE(derive_command_id("other", "Transfer", "t-1", "ev-t-1", 0), first->work[0].command_id);

  // The withdraw was accepted: deposit; then the deposit: complete + notify, cancel the timeout, done.
  saga_input withdrawn{"acme",
                       "Transfer",
                       "t-1",
                       "cmdresult:w1",
                       "command_result",
                       json{{"kind", "command_result"},
                            {"status", "accepted"},
                            {"command_type", "withdraw"},
                            {"aggregate_id", "acc-a"},
                            {"code", ""}}
                           .dump(),
                       ""};
  // The record as earlier versions stored it (nlohmann's sorted keys): both read the other's.
  const auto record = json::parse(first->record_json);
  EXPECT_EQ(first->record_json, record.dump());
  EXPECT_EQ(record["schedules"], json({{"timeout", 31000}}));
  EXPECT_EQ(record["state"]["step"], "withdrawing");
  EXPECT_EQ(record["inputs"], 1);
  auto second = run_step(sagas[0], a, record.dump(), withdrawn, 2000);
  ASSERT_TRUE(second.ok()) << second.err().to_string();
  ASSERT_EQ(second->work.size(), 1U);
  EXPECT_EQ(json::parse(second->work[0].item_json)["payload"]["type"], "deposit");
  saga_input deposited = withdrawn;
  deposited.input_id = "cmdresult:w2";
  deposited.input_json = json{
      {"kind", "command_result"},
      {"status", "accepted"},
      {"command_type", "deposit"},
      {"aggregate_id", "acc-b"},
      {"code", ""}}.dump();
  auto third = run_step(sagas[0], a, second->record_json, deposited, 3000);
  ASSERT_TRUE(third.ok()) << third.err().to_string();
  EXPECT_TRUE(third->done);
  ASSERT_EQ(third->work.size(), 2U);
  EXPECT_EQ(third->work[1].kind, "effect");
  ASSERT_EQ(third->cancel.size(), 1U);
  EXPECT_EQ(third->cancel[0].due_ms, 31000U) << "the cancel names the stored schedule";
  // Done: later inputs change nothing.
  auto after = run_step(sagas[0], a, third->record_json, withdrawn, 4000);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->skipped);
  EXPECT_TRUE(after->work.empty());
}

TEST(saga_step, a_malformed_result_or_a_failing_program_is_a_program_error_naming_the_instance) {
  storage::testing::temp_dir dir;
  runtime::program_cache programs;
  struct hostile {
    std::string body, expected;
  };
  for (const auto& h : std::vector<hostile>{
           {"function on_event(s, i) return 5 end", "on_event"},
           {"function on_event(s, i) return {work = {}} end", "'state' must be a table"},
           {"function on_event(s, i) return {state = {}, work = {{kind = 'x', payload = {}}}} end",
            "'kind' must be"},
           {"function on_event(s, i) return {state = {}, work = {{kind = 'command', aggregate_type = 'A', "
            "aggregate_id = 'a.b', payload = {type = 'x'}}}} end",
            "'aggregate_id' is not an id"},
           {"function on_event(s, i) return {state = {}, schedules = {{name = 'n', after_ms = -1}}} end",
            "'after_ms' must be"},
           {"function on_event(s, i) return {state = {}, done = 'yes'} end", "'done' must be a boolean"},
           {"function on_event(s, i) error('boom') end", "boom"},
           {"function on_event(s, i) while true do end end", "ran out of gas"},
           {"function on_event(s, i) return {state = {}, cancel = {{}}} end", "cancel[1]"},
       }) {
    const auto path = (dir.path() / "hostile.lua").string();
    auto p = programs.put("hostile", path, h.body);
    ASSERT_TRUE(p.ok()) << h.body;
    saga_config s;
    s.name = "Hostile";
    s.program = p.value();
    runtime::sandbox sb(runtime::sandbox_options{100000, 16u << 20});
    saga_input in{"acme", "Hostile", "c-1", "ev-1", "event", R"({"kind":"event"})", ""};
    auto r = run_step(s, sb, std::nullopt, in, 0);
    ASSERT_FALSE(r.ok()) << h.body;
    EXPECT_EQ(r.err().code, errc::program_error) << r.err().to_string();
    EXPECT_NE(r.err().to_string().find(h.expected), std::string::npos) << r.err().to_string();
    EXPECT_NE(r.err().to_string().find("correlation=c-1"), std::string::npos) << r.err().to_string();
  }
}

}  // namespace
}  // namespace esflow::runner
