// jetstream.consumer in an aggregate node: commands from a COMMANDS stream,
// acked after the durable commit; redelivery after a lost ack commits nothing
// twice; a message that fails on every delivery is quarantined and
// terminated after max_deliver (docs/contract.md "Consumers").
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"
#include "stages/nats/stages.h"
#include "storage/db.h"
#include "storage/node_store.h"
#include "tests/stages/nats/node_env.h"

namespace esflow::nats::testing {
namespace {

// A test stage: fails every message whose body contains "poison" with
// `unavailable` (the ack stage then naks it), passes the others on.
class poison_gate final : public graph::stage {
 public:
  void process(graph::message_ptr m, const graph::emitter& out) override {
    if (m->body.find("poison") != std::string::npos) {
      out.fail(std::move(m), error::make(errc::unavailable, "test: this message always fails"));
      return;
    }
    out.emit(std::move(m));
  }
};

const graph::kind_registry& test_registry() {
  static const graph::kind_registry registry = [] {
    graph::kind_registry r;
    stages::register_builtin_stages(r);
    graph::stage_descriptor d;
    d.kind = "test.poison_gate";
    d.description = "fails bodies containing 'poison' with unavailable";
    d.make = [](const graph::stage_init&) -> result<std::unique_ptr<graph::stage>> {
      return std::unique_ptr<graph::stage>(new poison_gate());
    };
    if (!r.add(std::move(d)).ok()) std::abort();
    return r;
  }();
  return registry;
}

// The aggregate pipeline fed by a durable consumer on COMMANDS (jobs.>);
// `last` is the terminal stage kind (ack, or sink.null to lose every ack).
std::string consumer_pipeline(const temp_path& dir, const std::string& last, bool with_poison_gate) {
  std::string yaml = R"(pipeline: jobs
settings:
  data_dir: ${ESFLOW_DATA_DIR}
  durability: relaxed
  event_log: jetstream
  nats_url: ${ESFLOW_NATS_URL}
  max_in_flight: 256
aggregates:
  Account: { program: PROGRAMS/account.lua }
stages:
  jobs:      { kind: jetstream.consumer, stream: COMMANDS, filter: "jobs.>", ack_wait: 1s, max_deliver: 3, fetch_timeout: 200ms }
  gate:      { kind: test.poison_gate }
  tenant:    { kind: tenant.gate }
  decode:    { kind: decode.command }
  rehydrate: { kind: aggregate.rehydrate, key: message, concurrency: 2 }
  decide:    { kind: aggregate.decide, key: message, concurrency: 2 }
  commit:    { kind: aggregate.commit, key: message }
  publish:   { kind: publish }
  done:      { kind: @LAST@ }
flow:
  - @EDGES@
  - "*.error -> publish"
)";
  yaml = replace_all(yaml, "PROGRAMS/", programs_dir());
  yaml = replace_all(yaml, "@LAST@", last);
  yaml =
      replace_all(yaml, "@EDGES@",
                  with_poison_gate
                      ? "jobs -> gate -> tenant -> decode -> rehydrate -> decide -> commit -> publish -> done"
                      : "jobs -> tenant -> decode -> rehydrate -> decide -> commit -> publish -> done");
  if (!with_poison_gate) yaml = replace_all(yaml, "  gate:      { kind: test.poison_gate }\n", "");
  return dir.write("jobs-" + last + ".yaml", yaml);
}

void create_commands_stream(natsConnection* nc) {
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = "COMMANDS";
  const char* subjects[] = {"jobs.>"};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_AddStream(&si, js, &cfg, nullptr, nullptr), NATS_OK);
  jsStreamInfo_Destroy(si);
  jsCtx_Destroy(js);
}

struct consumer_state {
  std::uint64_t ack_pending = 0, pending = 0, redelivered = 0, delivered = 0;
  std::uint64_t deliveries = 0;  // the consumer sequence: every delivery, redeliveries included
};

consumer_state consumer_info(natsConnection* nc, const char* durable) {
  consumer_state out;
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, nullptr) != NATS_OK) return out;
  jsConsumerInfo* ci = nullptr;
  if (js_GetConsumerInfo(&ci, js, "COMMANDS", durable, nullptr, nullptr) == NATS_OK) {
    out.ack_pending = static_cast<std::uint64_t>(ci->NumAckPending);
    out.pending = ci->NumPending;
    out.redelivered = static_cast<std::uint64_t>(ci->NumRedelivered);
    out.delivered = ci->Delivered.Stream;
    out.deliveries = ci->Delivered.Consumer;
    jsConsumerInfo_Destroy(ci);
  }
  jsCtx_Destroy(js);
  return out;
}

json consumer_stats(cli::served_nodes& node) {
  auto info = cli::served_host(node).info();
  for (const auto& c : info["consumers"])
    if (c.value("name", "") == "esflow-jobs-jobs") return c;
  return json::object();
}

class node_consumer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(_server.start());
    _client = std::make_unique<client>(_server.url());
    create_commands_stream(_client->raw());
  }
  std::string data_dir() const { return (_dir.path() / "data").string(); }

  nats_server_fixture _server;
  temp_path _dir;
  std::unique_ptr<client> _client;
};

TEST_F(node_consumer, acks_after_commit_and_a_redelivery_commits_nothing_twice) {
  const auto body = command_body("r-1", open_account(10), "cmd-r1");
  {
    // The first node commits but its acks are lost (as if killed before the ack).
    auto node =
        serve({consumer_pipeline(_dir, "sink.null", false)}, data_dir(), _server.url(), &test_registry());
    ASSERT_TRUE(node);
    _client->publish("jobs.tenant.acme.command.Account.r-1", body);
    ASSERT_TRUE(eventually([&] { return read_stream(_client->raw()).size() == 1; }, 10s));
    EXPECT_EQ(consumer_info(_client->raw(), "esflow-jobs-jobs").ack_pending, 1U);
  }
  // A second node (same data dir) gets the redelivery after ack_wait: the
  // command is known, answered as a duplicate, acked; nothing appended.
  auto node = serve({consumer_pipeline(_dir, "ack", false)}, data_dir(), _server.url(), &test_registry());
  ASSERT_TRUE(node);
  ASSERT_TRUE(eventually(
      [&] {
        auto st = consumer_info(_client->raw(), "esflow-jobs-jobs");
        return st.ack_pending == 0 && st.pending == 0;
      },
      10s));
  EXPECT_GE(consumer_stats(*node).value("acked", 0), 1);
  const auto commits = read_stream(_client->raw());
  ASSERT_EQ(commits.size(), 1U);
  EXPECT_EQ(commits[0].command_id, "cmd-r1");

  // New commands through the consumer are committed once and acked.
  _client->publish("jobs.tenant.acme.command.Account.r-1", command_body("r-1", deposit(5), "cmd-r2"));
  ASSERT_TRUE(eventually([&] { return read_stream(_client->raw()).size() == 2; }, 10s));
  ASSERT_TRUE(
      eventually([&] { return consumer_info(_client->raw(), "esflow-jobs-jobs").ack_pending == 0; }, 10s));
  EXPECT_EQ(read_stream(_client->raw()).back().first_version, 2U);
}

TEST_F(node_consumer, poison_message_is_quarantined_and_terminated_after_max_deliver) {
  {
    auto node = serve({consumer_pipeline(_dir, "ack", true)}, data_dir(), _server.url(), &test_registry());
    ASSERT_TRUE(node);
    // Stream sequence 1: fails on every delivery; sequence 2: a good command.
    _client->publish("jobs.tenant.acme.command.Account.p-1",
                     R"({"aggregate_type":"Account","payload":{"type":"poison"}})");
    _client->publish("jobs.tenant.acme.command.Account.p-2", command_body("p-2", open_account(1)));
    ASSERT_TRUE(eventually([&] { return consumer_stats(*node).value("quarantined", 0) == 1; }, 15s))
        << consumer_stats(*node).dump();
    ASSERT_TRUE(eventually(
        [&] {
          auto st = consumer_info(_client->raw(), "esflow-jobs-jobs");
          return st.ack_pending == 0 && st.pending == 0;
        },
        10s));
    // Terminated: no further delivery, even after ack_wait (1 s) passed three
    // times — the server's own count of deliveries says so, not only ours.
    const auto received = consumer_stats(*node).value("received", 0);
    EXPECT_EQ(received, 4) << "3 deliveries of the poison message, 1 of the good one";
    const auto server_deliveries = consumer_info(_client->raw(), "esflow-jobs-jobs").deliveries;
    EXPECT_EQ(server_deliveries, 4U);
    std::this_thread::sleep_for(3s);
    const auto later = consumer_info(_client->raw(), "esflow-jobs-jobs");
    EXPECT_EQ(later.deliveries, server_deliveries) << "the terminated message was delivered again";
    EXPECT_EQ(later.ack_pending, 0U);
    EXPECT_EQ(consumer_stats(*node).value("received", 0), received);
    EXPECT_EQ(consumer_stats(*node).value("naked", 0), 2);
  }
  const auto commits = read_stream(_client->raw());
  ASSERT_EQ(commits.size(), 1U);
  EXPECT_EQ(commits[0].aggregate_id, "p-2");

  // The node is down: its node store holds the quarantined message and the reason.
  auto db = storage::node_store::open({.data_dir = data_dir()});
  ASSERT_TRUE(db.ok()) << db.err().to_string();
  auto rec = db.value()->quarantine().get("esflow-jobs-jobs", 1);
  ASSERT_TRUE(rec.ok()) << rec.err().to_string();
  ASSERT_TRUE(rec.value().has_value());
  auto j = json::parse(*rec.value());
  EXPECT_EQ(j["stream"], "COMMANDS");
  EXPECT_EQ(j["stream_sequence"], 1);
  EXPECT_EQ(j["subject"], "jobs.tenant.acme.command.Account.p-1");
  EXPECT_EQ(j["deliveries"], 3);
  EXPECT_NE(j["reason"].get<std::string>().find("unavailable"), std::string::npos) << j.dump();
  EXPECT_NE(j["body"].get<std::string>().find("poison"), std::string::npos);
  auto listed = db.value()->quarantine().list(10);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1U);
  EXPECT_EQ(listed->front().source, "esflow-jobs-jobs");
  EXPECT_EQ(listed->front().position, 1U);
  auto none = db.value()->quarantine().get("esflow-jobs-jobs", 2);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().has_value());
  EXPECT_TRUE(db.value()->close().ok());
}

}  // namespace
}  // namespace esflow::nats::testing
