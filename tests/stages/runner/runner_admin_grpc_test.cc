// gRPC RunnerAdmin.{Drain,Status,Reload} (schemas/proto/runner_admin.proto,
// docs/runner.md "RunnerAdmin") on the shipped pipelines/aggregate.yaml +
// pipelines/runner-saga.yaml served in-process with a gRPC server: Status
// answers the runner's /info and /admin/outbox facts, Drain turns /ready
// false and Status says draining, Reload is FAILED_PRECONDITION with
// esflow-code reload_unsupported. A process without a runner pipeline does
// not serve RunnerAdmin.
#include "schemas/proto/runner_admin.grpc.pb.h"
#include "stages/runner/runner_grpc_admin.h"
#include "tests/stages/runner/runner_node.h"

#include <grpcpp/grpcpp.h>

namespace esflow::runner_test {
namespace {

using namespace std::chrono_literals;

struct call_result {
  grpc::Status status;
  std::multimap<std::string, std::string> initial, trailing;
};

call_result finish(grpc::ClientContext& ctx, grpc::Status s) {
  call_result r{std::move(s), {}, {}};
  for (const auto& [k, v] : ctx.GetServerInitialMetadata())
    r.initial.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  for (const auto& [k, v] : ctx.GetServerTrailingMetadata())
    r.trailing.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return r;
}

std::string value_of(const std::multimap<std::string, std::string>& md, const std::string& key) {
  auto it = md.find(key);
  return it == md.end() ? std::string() : it->second;
}

class runner_admin_grpc : public ::testing::Test {
 protected:
  std::unique_ptr<esflow::v1::RunnerAdmin::Stub> stub(const std::string& target) {
    return esflow::v1::RunnerAdmin::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  }
  static void deadline(grpc::ClientContext& ctx) { ctx.set_deadline(std::chrono::system_clock::now() + 10s); }

  call_result status(esflow::v1::RunnerAdmin::Stub& s, esflow::v1::StatusResponse& out) {
    grpc::ClientContext ctx;
    deadline(ctx);
    ctx.AddMetadata("x-correlation-id", "corr-status");
    ctx.AddMetadata("x-request-id", "req-1");
    return finish(ctx, s.Status(&ctx, esflow::v1::StatusRequest(), &out));
  }

  http_test::temp_dir dir;
};

TEST_F(runner_admin_grpc, status_answers_the_runners_info_and_outbox_facts) {
  runner_node node((dir.path() / "data").string(), {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml")},
                   {}, true);
  ASSERT_TRUE(node.ok());
  ASSERT_FALSE(node.grpc_target().empty());
  // A transfer through the saga: the figures are those of a runner that worked.
  EXPECT_EQ(node.command("acme", "Account", "a1", open_account(100))["status"], "accepted");
  EXPECT_EQ(node.command("acme", "Account", "a2", open_account(0))["status"], "accepted");
  EXPECT_EQ(node.command("acme", "Transfer", "t1", request_transfer("a1", "a2", 30))["status"], "accepted");
  ASSERT_TRUE(node.eventually([&] { return node.transfer_status("acme", "t1") == "completed"; }));
  // Settled (the completion's notify may still be in the outbox): the depth read twice below is the same.
  ASSERT_TRUE(node.eventually([&] { return node.outbox_depth() == 0; }));

  auto s = stub(node.grpc_target());
  esflow::v1::StatusResponse out;
  auto r = status(*s, out);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(out.mode(), "saga");
  EXPECT_TRUE(out.ready());
  EXPECT_FALSE(out.draining());
  EXPECT_EQ(out.quarantine_count(), 0U);
  EXPECT_EQ(value_of(r.initial, "x-correlation-id"), "corr-status");
  EXPECT_EQ(value_of(r.initial, "x-request-id"), "req-1");
  EXPECT_EQ(value_of(r.initial, "tenant-id"), "_");

  const auto j = json::parse(out.status_json(), nullptr, false);
  ASSERT_TRUE(j.is_object()) << out.status_json();
  EXPECT_EQ(j.value("mode", ""), "saga");
  EXPECT_TRUE(j["outbox_depth"].is_number_unsigned()) << j.dump();
  EXPECT_EQ(j["outbox_depth"].get<std::uint64_t>(), out.outbox_depth());
  EXPECT_EQ(j.value("draining", true), false);
  ASSERT_TRUE(j["pipelines"].contains("runner")) << j.dump();
  const auto& p = j["pipelines"]["runner"];
  bool transfer = false;
  for (const auto& saga : p["sagas"]) transfer = transfer || saga.value("name", "") == "Transfer";
  EXPECT_TRUE(transfer) << p.dump();
  // The same facts as /info's runner section and GET /admin/outbox.
  auto info = http_test::json_of(node.client().Get("/info"));
  ASSERT_TRUE(info.is_object());
  const auto& section = info["runner"]["runner"];
  for (const auto* key : {"mode", "sagas", "effects", "streams", "consumers", "checkpoints"})
    EXPECT_EQ(p[key], section[key]) << key;
  auto outbox = http_test::json_of(node.client().Get("/admin/outbox"));
  ASSERT_TRUE(outbox.is_array() && !outbox.empty()) << outbox.dump();
  EXPECT_EQ(p["outbox"]["pipeline"], outbox[0]["pipeline"]);
  EXPECT_EQ(static_cast<long>(out.outbox_depth()), node.outbox_depth());
}

TEST_F(runner_admin_grpc, drain_turns_ready_false_and_status_says_draining) {
  runner_node node((dir.path() / "data").string(), {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml")},
                   {}, true);
  ASSERT_TRUE(node.ok());
  auto s = stub(node.grpc_target());
  auto ready = node.client().Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);

  esflow::v1::DrainResponse drained;
  {
    grpc::ClientContext ctx;
    deadline(ctx);
    auto r = finish(ctx, s->Drain(&ctx, esflow::v1::DrainRequest(), &drained));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  }
  EXPECT_TRUE(drained.draining());
  EXPECT_FALSE(drained.already_draining());
  const auto after = json::parse(drained.status_json(), nullptr, false);
  ASSERT_TRUE(after.is_object()) << drained.status_json();
  EXPECT_EQ(after.value("draining", false), true);
  EXPECT_EQ(after.value("ready", true), false);

  EXPECT_TRUE(node.host().drain_requested());
  ready = node.client().Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;

  esflow::v1::StatusResponse out;
  auto r = status(*s, out);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_TRUE(out.draining());
  EXPECT_FALSE(out.ready());

  // Idempotent: a second drain says it was already asked for.
  esflow::v1::DrainResponse again;
  grpc::ClientContext ctx;
  deadline(ctx);
  ASSERT_TRUE(s->Drain(&ctx, esflow::v1::DrainRequest(), &again).ok());
  EXPECT_TRUE(again.draining());
  EXPECT_TRUE(again.already_draining());
}

TEST_F(runner_admin_grpc, reload_runs_the_process_reload_and_names_the_sagas) {
  runner_node node((dir.path() / "data").string(), {pipeline("aggregate.yaml"), pipeline("runner-saga.yaml")},
                   {}, true);
  ASSERT_TRUE(node.ok());
  auto s = stub(node.grpc_target());
  esflow::v1::ReloadResponse out;
  grpc::ClientContext ctx;
  deadline(ctx);
  auto r = finish(ctx, s->Reload(&ctx, esflow::v1::ReloadRequest(), &out));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_TRUE(out.reloaded());
  const auto reason = nlohmann::json::parse(out.reason());
  EXPECT_EQ(reason.value("sagas:runner", ""), "unchanged") << out.reason();
  EXPECT_EQ(reason.value("programs", ""), "unchanged") << out.reason();
  // Nothing changed: still ready, not draining.
  EXPECT_TRUE(node.host().ready().ok) << node.host().ready().detail;
}

TEST_F(runner_admin_grpc, a_process_without_a_runner_pipeline_does_not_serve_it) {
  runner_node node((dir.path() / "data").string(), {pipeline("aggregate.yaml")}, {}, true);
  ASSERT_TRUE(node.ok());
  ASSERT_FALSE(node.grpc_target().empty());
  auto s = stub(node.grpc_target());
  esflow::v1::StatusResponse out;
  auto r = status(*s, out);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << r.status.error_message();
}

}  // namespace
}  // namespace esflow::runner_test
