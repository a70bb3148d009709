// Saga runners scale out as replicas: two real `esflow run` children of the
// shipped pipelines/runner-saga-jetstream.yaml with node ids runner-a and
// runner-b share its durable consumers, beside an aggregate node
// (aggregate-jetstream.yaml), all on one nats-server. Saga state is
// node-local, so each tenant belongs to one replica (a ring over the two in
// the KV bucket RUNNER_PLACEMENT, pinned on first sight) and a message
// fetched by the other replica is forwarded to the owner (tenant.route). The
// money-transfer example runs for several tenants while runner-a is rolled
// (SIGTERM: it drains and exits 0), and while it is away runner-b, holding
// forwards for it, is killed (SIGKILL); both start again on their directories
// and ports. In the end every transfer completed or failed, each tenant's money is
// conserved, no command was appended twice, one notify effect command per
// completed transfer, both replicas took in and forwarded messages, every
// tenant is pinned to one of them and its sagas live only there (the other
// replica answers a read 421 tenant_not_hosted naming the owner), and every
// consumer has acked everything. Hostile forwards (no headers, not JSON, no
// tenant) are answered and change nothing.
#include "placement/kv_placement.h"
#include "storage/jetstream/jetstream_workflow_stream.h"
#include "tests/stages/runner/child_node.h"
#include "transport/nats/headers.h"

#include <random>
#include <set>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

constexpr int k_transfers = 240;
constexpr int k_accounts = 4;  // per tenant
constexpr std::int64_t k_initial = 1000;
const std::vector<std::string> k_tenants = {"acme",  "globex", "initech", "umbrella",
                                            "hooli", "stark",  "wayne",   "tyrell"};

std::string account(int i) { return "acc-" + std::to_string(i); }
std::string transfer_id(int i) { return "tr-" + std::to_string(i); }
const std::string& tenant_of(int i) { return k_tenants[static_cast<std::size_t>(i) % k_tenants.size()]; }

json post_command(httplib::Client& c, const std::string& tenant, const std::string& type,
                  const std::string& id, const json& payload) {
  const json body = {{"aggregate_type", type}, {"aggregate_id", id}, {"payload", payload}};
  auto r = c.Post("/v1/commands", {{"x-tenant-id", tenant}}, body.dump(), "application/json");
  return r ? json::parse(r->body, nullptr, false) : json();
}

json aggregate_state(httplib::Client& c, const std::string& tenant, const std::string& type,
                     const std::string& id) {
  auto r = c.Get("/v1/aggregates/" + type + "/" + id, {{"x-tenant-id", tenant}});
  return r && r->status == 200 ? json::parse(r->body, nullptr, false)["state"] : json();
}

// The routing facts a runner reports in /info ("routing:runner"); null when unreachable.
json routing_of(const child_node& node) {
  httplib::Client c("127.0.0.1", node.port());
  c.set_connection_timeout(1, 0);
  auto r = c.Get("/info");
  if (!r || r->status != 200) return nullptr;
  const auto j = json::parse(r->body, nullptr, false);
  return j.is_object() && j.contains("routing:runner") ? j["routing:runner"] : json();
}

// GET /v1/sagas/Transfer/<id>: the status and, for a rejection, its code, node and http.
std::string saga_read(const child_node& node, const std::string& tenant, const std::string& correlation_id) {
  httplib::Client c("127.0.0.1", node.port());
  auto r = c.Get("/v1/sagas/Transfer/" + correlation_id, {{"x-tenant-id", tenant}});
  if (!r) return "no answer";
  if (r->status == 200) return "200";
  const auto j = json::parse(r->body, nullptr, false);
  return std::to_string(r->status) + " " +
         (j.is_object() ? j.value("code", "") + " " + j.value("node", "") + " " + j.value("http", "") : "");
}

std::unique_ptr<storage::workflow_stream> open_stream(nats::nats_connection& conn, const std::string& name) {
  storage::jetstream::jetstream_stream_options o;
  o.ensure_stream = false;  // the nodes created it
  auto s = storage::jetstream::jetstream_workflow_stream::open(conn, name, o);
  EXPECT_TRUE(s.ok()) << name << ": " << s.err().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::vector<storage::stream_message> all_messages(storage::workflow_stream& s) {
  std::vector<storage::stream_message> out;
  storage::position_t after = 0;
  for (int page = 0; page < 200; ++page) {
    auto msgs = s.read_from(after, 1000);
    if (!msgs.ok() || msgs->empty()) break;
    for (auto& m : msgs.value()) {
      after = m.position;
      out.push_back(std::move(m));
    }
  }
  return out;
}

// Every body of a stream, read by sequence (AGGREGATE_EVENTS is no workflow stream).
std::vector<std::string> stream_bodies(nats::nats_connection& conn, const char* stream) {
  std::vector<std::string> out;
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = conn.jetstream(jo);
  if (!js.ok()) return out;
  jsStreamInfo* si = nullptr;
  if (js_GetStreamInfo(&si, *js, stream, nullptr, nullptr) == NATS_OK) {
    for (std::uint64_t seq = si->State.FirstSeq; seq <= si->State.LastSeq && seq < 100000; ++seq) {
      natsMsg* msg = nullptr;
      if (js_GetMsg(&msg, *js, stream, seq, nullptr, nullptr) != NATS_OK) continue;
      out.emplace_back(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
      natsMsg_Destroy(msg);
    }
    jsStreamInfo_Destroy(si);
  }
  jsCtx_Destroy(*js);
  return out;
}

// Unacked or undelivered messages over the runner's consumers (-1: a consumer not found).
std::int64_t consumers_backlog(nats::nats_connection& conn) {
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = conn.jetstream(jo);
  if (!js.ok()) return -1;
  std::int64_t left = 0;
  const std::vector<std::pair<const char*, const char*>> consumers = {
      {"AGGREGATE_EVENTS", "esflow-runner-transfers"},
      {"WORKFLOW_EVENTS", "esflow-runner-results"},
      {"WORKFLOW_EVENTS", "esflow-runner-reminders"},
      {"WORKFLOW_EVENTS", "esflow-runner-outcomes"}};
  for (const auto& [stream, durable] : consumers) {
    jsConsumerInfo* ci = nullptr;
    if (js_GetConsumerInfo(&ci, *js, stream, durable, nullptr, nullptr) != NATS_OK) {
      left = -1;
      break;
    }
    left += ci->NumAckPending + static_cast<std::int64_t>(ci->NumPending);
    jsConsumerInfo_Destroy(ci);
  }
  jsCtx_Destroy(*js);
  return left;
}

TEST(runner_saga_replicas,
     two_saga_runners_share_the_consumers_each_tenant_on_one_and_a_roll_and_a_kill_lose_nothing) {
  nats::testing::nats_server_fixture nats_server;
  ASSERT_TRUE(nats_server.start()) << "nats-server did not start";
  http_test::temp_dir dir;
  const auto data_agg = (dir.path() / "data-agg").string();
  const auto data_a = (dir.path() / "data-a").string(), data_b = (dir.path() / "data-b").string();
  const std::vector<std::string> agg_files = {pipeline("aggregate-jetstream.yaml")};
  const std::vector<std::string> runner_files = {pipeline("runner-saga-jetstream.yaml")};
  const std::vector<std::string> nats_args = {"--nats", nats_server.url()};
  auto with_node = [&](const std::string& id) {
    auto args = nats_args;
    args.insert(args.end(), {"--node-id", id});
    return args;
  };

  child_node agg(data_agg, agg_files, "", nats_args);
  ASSERT_TRUE(agg.ready(20s)) << log_tail(data_agg);
  auto a = std::make_unique<child_node>(data_a, runner_files, "", with_node("runner-a"));
  auto b = std::make_unique<child_node>(data_b, runner_files, "", with_node("runner-b"));
  ASSERT_TRUE(a->ready(20s)) << log_tail(data_a);
  ASSERT_TRUE(b->ready(20s)) << log_tail(data_b);
  const int port_a = a->port(), port_b = b->port();

  httplib::Client c("127.0.0.1", agg.port());
  c.set_read_timeout(5, 0);
  for (const auto& t : k_tenants)
    for (int i = 0; i < k_accounts; ++i) {
      bool opened = false;
      for (int attempt = 0; attempt < 20 && !opened; ++attempt) {
        const auto r = post_command(c, t, "Account", account(i), open_account(k_initial));
        opened = r.value("status", "") == "accepted" || r.value("code", "") == "account_already_open";
        if (!opened) std::this_thread::sleep_for(50ms);
      }
      ASSERT_TRUE(opened) << t << "/" << account(i);
    }

  // Sent about 10 ms apart, so the roll falls mid-stream.
  std::mt19937_64 rng(20261205);
  const auto requests = random_transfers(rng, k_transfers, k_accounts, 400);
  std::atomic<int> sent{0};
  std::atomic<bool> a_back{false};
  std::thread traffic([&] {
    httplib::Client tc("127.0.0.1", agg.port());
    tc.set_read_timeout(5, 0);
    for (int i = 0; i < k_transfers; ++i) {
      // The last third waits for the restarted A, so that it takes part again.
      if (i == k_transfers * 2 / 3)
        for (int w = 0; w < 3000 && !a_back; ++w) std::this_thread::sleep_for(10ms);
      bool stored = false;
      for (int attempt = 0; attempt < 20 && !stored; ++attempt) {
        const auto r = post_command(tc, tenant_of(i), "Transfer", transfer_id(i), requests[i]);
        stored = r.value("status", "") == "accepted" || r.value("code", "") == "transfer_already_requested";
        if (!stored) std::this_thread::sleep_for(50ms);
      }
      if (!stored) return;
      sent = i + 1;
      std::this_thread::sleep_for(10ms);
    }
  });

  // The roll of A with a third of the transfers requested.
  ASSERT_TRUE(eventually([&] { return sent >= k_transfers / 3; }, 30s));
  const auto routing_a_before = routing_of(*a);
  a->terminate();
  const int a_exit = a->wait_exit(30s);
  EXPECT_EQ(a_exit, 0) << "a drained replica exits 0\n" << log_tail(data_a);
  const int sent_at_exit = sent;
  // While A is away, B holds the messages of A's tenants, forwarding them again and again; then B
  // dies (SIGKILL): what it held was not acked, so the server delivers it again after ack_wait.
  json routing_b_killed;
  EXPECT_TRUE(eventually(
      [&] {
        routing_b_killed = routing_of(*b);
        return routing_b_killed.is_object() && routing_b_killed.value("pending", 0) > 0;
      },
      10s))
      << "B never waited for A: " << routing_b_killed.dump();
  b->kill();
  b->wait_exit(10s);
  a = std::make_unique<child_node>(data_a, runner_files, "", with_node("runner-a"), port_a);
  b = std::make_unique<child_node>(data_b, runner_files, "", with_node("runner-b"), port_b);
  ASSERT_TRUE(a->ready(20s)) << log_tail(data_a);
  ASSERT_TRUE(b->ready(20s)) << log_tail(data_b);
  a_back = true;
  traffic.join();
  ASSERT_EQ(sent, k_transfers) << "the traffic stopped";

  // Every transfer ends (completed or failed), and each tenant's money is where it was.
  int completed = 0, failed = 0;
  EXPECT_TRUE(eventually(
      [&] {
        completed = failed = 0;
        for (int i = 0; i < k_transfers; ++i) {
          const auto s = aggregate_state(c, tenant_of(i), "Transfer", transfer_id(i));
          const auto st = s.is_object() ? s.value("status", "") : "";
          completed += st == "completed" ? 1 : 0;
          failed += st == "failed" ? 1 : 0;
        }
        return completed + failed == k_transfers;
      },
      90s))
      << completed << " completed, " << failed << " failed of " << k_transfers << "\nA:\n"
      << log_tail(data_a) << "\nB:\n"
      << log_tail(data_b);
  for (const auto& t : k_tenants) {
    std::int64_t sum = 0;
    EXPECT_TRUE(eventually(
        [&] {
          sum = 0;
          for (int i = 0; i < k_accounts; ++i) {
            const auto s = aggregate_state(c, t, "Account", account(i));
            sum += s.is_object() ? s.value("balance", std::int64_t{0}) : 0;
          }
          return sum == k_initial * k_accounts;
        },
        20s))
        << "tenant " << t << ": money conserved: " << sum;
  }
  EXPECT_GT(completed, 0);
  EXPECT_GT(failed, 0);

  // Every consumer acked everything: nothing waits on a replica or on ack_wait.
  auto conn = nats::nats_connection::connect({.url = nats_server.url(), .name = "saga-replicas-test"});
  ASSERT_TRUE(conn.ok()) << conn.err().to_string();
  std::int64_t backlog = -1;
  EXPECT_TRUE(eventually(
      [&] {
        backlog = consumers_backlog(*conn.value());
        return backlog == 0;
      },
      20s))
      << backlog << " messages unacked or undelivered on the runner's consumers";

  // No command appended twice (a saga instance run on two replicas would send its own copies).
  auto commands = open_stream(*conn.value(), "WORKFLOW_COMMANDS");
  ASSERT_TRUE(commands);
  std::map<std::string, int> commits;
  for (const auto& body : stream_bodies(*conn.value(), "AGGREGATE_EVENTS")) {
    const auto j = json::parse(body, nullptr, false);
    ++commits[j.value("tenant_id", "") + "/" + j.value("command_id", "")];
  }
  EXPECT_GE(commits.size(), k_tenants.size() * k_accounts + k_transfers);
  for (const auto& [id, n] : commits) EXPECT_EQ(n, 1) << "command " << id;
  // One notify per completed transfer.
  std::map<std::string, int> notify;
  for (const auto& m : all_messages(*commands)) {
    const auto j = json::parse(m.body, nullptr, false);
    ++notify[j.value("tenant_id", "") + "/" + j.value("command_id", "")];
  }
  EXPECT_EQ(static_cast<int>(notify.size()), completed);
  for (const auto& [id, n] : notify) EXPECT_EQ(n, 1) << "effect command " << id;

  // Each tenant pinned to one of the two, both own some; its sagas live on its owner only.
  placement::kv_options kv_opts;
  kv_opts.bucket = "RUNNER_PLACEMENT";
  kv_opts.ring_kind = "runner";
  auto kv = placement::kv_placement::open(*conn.value(), kv_opts);
  ASSERT_TRUE(kv.ok()) << kv.err().to_string();
  ASSERT_TRUE(kv.value()->start_watch().ok());
  ASSERT_TRUE(kv.value()->wait_initial(5s).ok());
  const auto map = kv.value()->current();
  std::map<std::string, int> owned;
  for (const auto& t : k_tenants) {
    const auto it = map->tenants().find(t);
    ASSERT_TRUE(it != map->tenants().end()) << "tenant " << t << " not pinned";
    EXPECT_TRUE(it->second == "runner-a" || it->second == "runner-b") << t << " -> " << it->second;
    ++owned[it->second];
  }
  EXPECT_EQ(owned.size(), 2u) << "both replicas own tenants";
  for (int i = 0; i < k_transfers; i += 7) {
    const auto& owner = map->tenants().find(tenant_of(i))->second;
    const child_node& here = owner == "runner-a" ? *a : *b;
    const child_node& there = owner == "runner-a" ? *b : *a;
    EXPECT_EQ(saga_read(here, tenant_of(i), transfer_id(i)), "200") << transfer_id(i) << " on " << owner;
    EXPECT_EQ(saga_read(there, tenant_of(i), transfer_id(i)),
              "421 tenant_not_hosted " + owner + " 127.0.0.1:" + std::to_string(here.port()))
        << transfer_id(i) << " is read on its owner";
  }
  kv.value()->stop();

  // Both replicas took messages in and forwarded others; A again after its restart.
  const auto ra = routing_of(*a), rb = routing_of(*b);
  std::cout << "[ saga replicas ] " << k_transfers << " transfers over " << k_tenants.size()
            << " tenants: " << completed << " completed, " << failed << " failed; A before its roll "
            << routing_a_before.dump() << " (exit " << a_exit << ", " << sent_at_exit
            << " sent), B when killed " << routing_b_killed.dump() << ", A after " << ra.dump()
            << ", B after " << rb.dump() << "\n";
  ASSERT_TRUE(rb.is_object() && ra.is_object() && routing_a_before.is_object());
  EXPECT_GT(rb.value("local", 0), 0);
  EXPECT_GT(rb.value("forwarded", 0), 0);
  EXPECT_GT(rb.value("received", 0), 0);
  EXPECT_EQ(rb.value("pending", -1), 0);
  EXPECT_EQ(rb.value("confirmed", 0) + rb.value("handed_back", 0),
            rb.value("forwarded", 0) + rb.value("refused", 0));
  EXPECT_GT(routing_a_before.value("local", 0) + routing_a_before.value("received", 0), 0);
  EXPECT_GT(ra.value("local", 0) + ra.value("received", 0), 0) << "the restarted A took nothing in";

  // Hostile forwards (no headers, a body that is not JSON, a subject of no tenant, an unknown
  // stream's subject): each one answered `ok` (finally answered: rejected), and A keeps serving.
  const auto received_before = routing_of(*a).value("received", 0);
  for (const std::string subject :
       {"", "garbage", "tenant.acme.aggregate.Transfer.tr-x", "tenant.acme.nope.X"}) {
    natsMsg* req = nullptr;
    ASSERT_EQ(natsMsg_Create(&req, "_ESFLOW.forward.runner.runner-a", nullptr, "{not json", 9), NATS_OK);
    if (!subject.empty()) natsMsgHeader_Set(req, "esflow-subject", subject.c_str());
    natsMsg* reply = nullptr;
    const auto st = natsConnection_RequestMsg(&reply, conn.value()->raw(), req, 5000);
    natsMsg_Destroy(req);
    ASSERT_EQ(st, NATS_OK) << "no answer to a hostile forward with subject '" << subject << "'";
    EXPECT_EQ(nats::get_header(reply, "esflow-forward-status").value_or(""), "ok") << subject;
    natsMsg_Destroy(reply);
  }
  EXPECT_EQ(routing_of(*a).value("received", 0), received_before + 4);
  const auto& owner_0 = map->tenants().find(tenant_of(0))->second;
  EXPECT_EQ(saga_read(owner_0 == "runner-a" ? *a : *b, tenant_of(0), transfer_id(0)), "200");
  EXPECT_TRUE(commands->close().ok());
}

}  // namespace
}  // namespace esflow::runner_test
