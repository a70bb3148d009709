// gRPC CommandService.SubmitCommand (stage grpc.commands) against
// POST /v1/commands on one node running the shipped aggregate.yaml: the same
// commands, sent once over each transport to twin aggregates, get the same
// answers — accepted results field by field, and every rejection as the
// contract's gRPC status with the HTTP body's code (trailing esflow-code) and
// message. Bad input on purpose: malformed payload_json, a payload that tries
// to smuggle fields, bad and missing tenants, unknown types, a huge payload.
#include "cli/app.h"
#include "common/errc.h"
#include "schemas/proto/command_service.grpc.pb.h"
#include "tests/stages/ingest/http_util.h"
#include "transport/node_host.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <thread>

namespace esflow {
namespace {

using json = nlohmann::json;

struct command {
  explicit command(std::string payload) : payload_json(std::move(payload)) {}
  command with_id(std::string v) const { return set(&command::command_id, std::move(v)); }
  command with_type(std::string v) const { return set(&command::type, std::move(v)); }
  command with_body_tenant(std::string v) const { return set(&command::body_tenant, std::move(v)); }
  command with_metadata(std::string v) const { return set(&command::metadata_json, std::move(v)); }
  command with_tenant(std::optional<std::string> v) const { return set(&command::tenant, std::move(v)); }

  std::optional<std::string> tenant = "acme";  // header / metadata
  std::string body_tenant;                     // the body's tenant_id ("" = absent)
  std::string command_id;
  std::string type = "Account";
  std::string payload_json;
  std::string metadata_json;

 private:
  template <typename T>
  command set(T command::*field, T v) const {
    auto c = *this;
    c.*field = std::move(v);
    return c;
  }
};

// One answer in a transport-neutral shape: the HTTP body's fields.
struct outcome {
  std::string status, code, message;
  std::uint64_t version = 0;
  bool duplicate = false;
  std::vector<std::string> event_types;
  int grpc_code = 0;  // the status a gRPC client saw / HTTP's mapped to gRPC
};

class grpc_commands : public ::testing::Test {
 protected:
  void SetUp() override {
    cli::serve_options o;
    o.overrides.data_dir = (_dir.path() / "data").string();
    o.overrides.http = "127.0.0.1:0";
    o.overrides.grpc = "127.0.0.1:0";
    auto served = cli::serve_nodes({std::string(ESFLOW_SOURCE_DIR) + "/pipelines/aggregate.yaml"}, o);
    ASSERT_TRUE(served.ok()) << served.err().to_string();
    _served = std::move(served).value();
    auto& host = cli::served_host(*_served);
    for (int i = 0; i < 3000 && !host.ready().ok; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(host.ready().ok) << host.ready().detail;
    _http = std::make_unique<httplib::Client>(cli::served_url(*_served));
    _http->set_read_timeout(30, 0);
    _stub = esflow::v1::CommandService::NewStub(
        grpc::CreateChannel(host.grpc()->target(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    _stub.reset();
    _http.reset();
    _served.reset();
  }

  outcome over_http(const command& c, const std::string& id) {
    std::string body =
        R"({"aggregate_type":)" + json(c.type).dump() + R"(,"aggregate_id":)" + json(id).dump();
    if (!c.body_tenant.empty()) body += R"(,"tenant_id":)" + json(c.body_tenant).dump();
    if (!c.command_id.empty()) body += R"(,"command_id":)" + json(c.command_id + id).dump();
    body += R"(,"payload":)" + c.payload_json;
    if (!c.metadata_json.empty()) body += R"(,"metadata":)" + c.metadata_json;
    body += "}";
    httplib::Headers h;
    if (c.tenant) h.emplace("x-tenant-id", *c.tenant);
    auto r = _http->Post("/v1/commands", h, body, "application/json");
    outcome o;
    if (!r) return o;
    auto j = json::parse(r->body);
    o.status = j.value("status", "");
    o.code = j.value("code", "");
    o.message = j.value("message", "");
    o.version = j.value("version", std::uint64_t{0});
    o.duplicate = j.value("duplicate", false);
    if (j.contains("events"))
      for (const auto& e : j["events"]) o.event_types.push_back(e.value("event_type", ""));
    o.grpc_code = o.status == "accepted" ? 0 : static_cast<int>(grpc_status(errc_from_wire(o.code)));
    return o;
  }

  outcome over_grpc(const command& c, const std::string& id) {
    esflow::v1::Command in;
    in.set_tenant_id(c.body_tenant);
    if (!c.command_id.empty()) in.set_command_id(c.command_id + id);
    in.set_aggregate_type(c.type);
    in.set_aggregate_id(id);
    in.set_payload_json(c.payload_json);
    in.set_metadata_json(c.metadata_json);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (c.tenant) ctx.AddMetadata("x-tenant-id", *c.tenant);
    esflow::v1::CommandResult out;
    auto st = _stub->SubmitCommand(&ctx, in, &out);
    outcome o;
    o.grpc_code = st.error_code();
    if (st.ok()) {
      o.status = out.status();
      o.version = out.version();
      o.duplicate = out.duplicate();
      for (const auto& e : out.events()) o.event_types.push_back(e.event_type());
      EXPECT_EQ(out.aggregate_id(), id);
      return o;
    }
    o.status = "rejected";
    o.message = st.error_message();
    const auto& trailers = ctx.GetServerTrailingMetadata();
    if (auto it = trailers.find("esflow-code"); it != trailers.end())
      o.code = std::string(it->second.data(), it->second.size());
    return o;
  }

  http_test::temp_dir _dir;
  std::shared_ptr<cli::served_nodes> _served;
  std::unique_ptr<httplib::Client> _http;
  std::unique_ptr<esflow::v1::CommandService::Stub> _stub;
};

TEST_F(grpc_commands, answers_equal_the_http_answers_for_the_same_commands) {
  const std::string huge = R"({"type":"deposit","amount":1,"pad":")" + std::string(2 << 20, 'x') + "\"}";
  const std::vector<std::pair<std::string, command>> script = {
      {"open", command(R"({"type":"open_account","initial_balance":100})").with_id("open-")},
      {"deposit", command(R"({"type":"deposit","amount":50})").with_metadata(R"({"source":"test"})")},
      {"same command id again: a duplicate",
       command(R"({"type":"open_account","initial_balance":100})").with_id("open-")},
      {"reused command id, other payload", command(R"({"type":"deposit","amount":7})").with_id("open-")},
      {"domain rejection", command(R"({"type":"withdraw","amount":100000})")},
      {"unknown aggregate type", command(R"({"type":"deposit","amount":1})").with_type("Nope")},
      {"invalid tenant", command(R"({"type":"deposit","amount":1})").with_tenant("bad tenant!")},
      {"missing tenant", command(R"({"type":"deposit","amount":1})").with_tenant(std::nullopt)},
      {"body tenant differs", command(R"({"type":"deposit","amount":1})").with_body_tenant("globex")},
      {"payload without type", command(R"({"amount":1})")},
      {"payload too large", command(huge)},
      {"program's own code", command(R"({"type":"deposit","amount":1.5})")},
  };
  for (const auto& [what, c] : script) {
    SCOPED_TRACE(what);
    const auto h = over_http(c, "acc-http");
    const auto g = over_grpc(c, "acc-grpc");
    EXPECT_EQ(g.status, h.status);
    EXPECT_EQ(g.code, h.code);
    EXPECT_EQ(g.grpc_code, h.grpc_code) << "gRPC status of " << h.code;
    EXPECT_EQ(g.version, h.version);
    EXPECT_EQ(g.duplicate, h.duplicate);
    EXPECT_EQ(g.event_types, h.event_types);
    if (h.status == "rejected") {
      EXPECT_FALSE(g.message.empty());
      // Messages name the aggregate they were about; the ids differ on purpose.
      auto strip = [](std::string m) {
        for (const auto* id : {"acc-http", "acc-grpc"})
          for (auto p = m.find(id); p != std::string::npos; p = m.find(id)) m.replace(p, 8, "ID");
        return m;
      };
      EXPECT_EQ(strip(g.message), strip(h.message));
    }
  }
}

TEST_F(grpc_commands, a_payload_that_is_not_one_json_object_is_refused_and_never_spliced_into_the_body) {
  // Text that would add fields if it were pasted into the JSON body as is.
  for (const std::string bad : {R"({"type":"deposit","amount":1},"tenant_id":"globex")", R"([1,2])",
                                R"(not json)", R"({"type":"deposit","amount":1} {"x":1})", ""}) {
    SCOPED_TRACE(bad);
    auto g = over_grpc(command(bad), "acc-1");
    EXPECT_EQ(g.grpc_code, grpc::INVALID_ARGUMENT);
    EXPECT_EQ(g.code, "invalid_command");
  }
  auto g = over_grpc(command(R"({"type":"deposit","amount":1})").with_metadata("[]"), "acc-1");
  EXPECT_EQ(g.code, "invalid_command");
  // Nothing was stored for acc-1.
  auto r = _http->Get("/v1/aggregates/Account/acc-1", {{"x-tenant-id", "acme"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

}  // namespace
}  // namespace esflow
