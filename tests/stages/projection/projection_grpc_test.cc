// gRPC QueryService.Query (schemas/proto/query_service.proto) against
// GET /v1/query/<view> on one node: for every request (filters, limits,
// order_by, cursors, min_position reached and not, and each bad request)
// the gRPC answer equals the HTTP one — rows, next_cursor, position — and a
// rejection carries the contract's gRPC status, the HTTP body's message and
// its code in the trailing metadata `esflow-code`. Plus the errc -> gRPC
// status table of docs/contract.md ("Rejection codes").
#include "common/errc.h"
#include "schemas/proto/query_service.grpc.pb.h"
#include "tests/stages/projection/projection_node.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>

namespace esflow::projection_test {
namespace {

// The contract's gRPC column, row by row.
TEST(grpc_status_table, every_code_maps_to_the_contracts_grpc_status) {
  const std::map<errc, grpc::StatusCode> want = {
      {errc::invalid_command, grpc::INVALID_ARGUMENT},
      {errc::payload_too_large, grpc::INVALID_ARGUMENT},
      {errc::command_id_reused, grpc::ALREADY_EXISTS},
      {errc::invalid_tenant, grpc::INVALID_ARGUMENT},
      {errc::tenant_access_denied, grpc::PERMISSION_DENIED},
      {errc::tenant_not_hosted, grpc::FAILED_PRECONDITION},
      {errc::domain_rejection, grpc::FAILED_PRECONDITION},
      {errc::version_conflict, grpc::ABORTED},
      {errc::not_found, grpc::NOT_FOUND},
      {errc::program_error, grpc::INTERNAL},
      {errc::unavailable, grpc::UNAVAILABLE},
      {errc::invalid_query, grpc::INVALID_ARGUMENT},
      {errc::internal, grpc::INTERNAL},
      {errc::unauthenticated, grpc::UNAUTHENTICATED},
      {errc::forbidden, grpc::PERMISSION_DENIED},
      {errc::deadline_exceeded, grpc::DEADLINE_EXCEEDED},
      {errc::ok, grpc::OK},
  };
  for (const auto& [code, status] : want)
    EXPECT_EQ(static_cast<int>(grpc_status(code)), static_cast<int>(status)) << to_string(code);
  // The enum mirrors grpc::StatusCode value for value.
  EXPECT_EQ(static_cast<int>(grpc_code::unauthenticated), grpc::UNAUTHENTICATED);
  EXPECT_EQ(static_cast<int>(grpc_code::deadline_exceeded), grpc::DEADLINE_EXCEEDED);
  EXPECT_EQ(static_cast<int>(grpc_code::data_loss), grpc::DATA_LOSS);
}

// One query, as both transports carry it. Numeric parameters are numbers
// (gRPC fields are typed); absent = not sent.
struct request {
  std::string view = "accounts";
  std::optional<std::string> tenant = "acme";
  std::optional<std::string> filter, cursor, order_by;
  std::optional<std::uint64_t> limit, min_position, wait_ms;

  httplib::Params params() const {
    httplib::Params p;
    if (filter) p.emplace("filter", *filter);
    if (cursor) p.emplace("cursor", *cursor);
    if (order_by) p.emplace("order_by", *order_by);
    if (limit) p.emplace("limit", std::to_string(*limit));
    if (min_position) p.emplace("min_position", std::to_string(*min_position));
    if (wait_ms) p.emplace("wait_ms", std::to_string(*wait_ms));
    return p;
  }
  esflow::v1::QueryRequest proto() const {
    esflow::v1::QueryRequest q;
    q.set_view(view);
    if (filter) q.set_filter(*filter);
    if (cursor) q.set_cursor(*cursor);
    if (order_by) q.set_order_by(*order_by);
    if (limit) q.set_limit(*limit);
    if (min_position) q.set_min_position(*min_position);
    if (wait_ms) q.set_wait_ms(*wait_ms);
    return q;
  }
};

// A gRPC answer in the HTTP answer's JSON shape (or the rejection's).
struct grpc_answer {
  grpc::StatusCode status = grpc::OK;
  std::string message;
  std::string esflow_code;
  json body;
  std::multimap<std::string, std::string> initial;
};

std::string str(const grpc::string_ref& s) { return {s.data(), s.size()}; }

class projection_grpc : public ::testing::Test {
 protected:
  void SetUp() override {
    node = std::make_unique<projection_node>(backend::embedded, std::string(), std::string(), std::string(),
                                             true);
    ASSERT_FALSE(node->grpc_target().empty());
    stub = esflow::v1::QueryService::NewStub(
        grpc::CreateChannel(node->grpc_target(), grpc::InsecureChannelCredentials()));
    // 12 accounts of acme, 3 of globex; a few with more history.
    for (int i = 0; i < 12; ++i)
      last = node->accepted("acme", "acc-" + std::to_string(i), open_account(i * 10));
    for (int i = 0; i < 12; i += 3) last = node->accepted("acme", "acc-" + std::to_string(i), deposit(5));
    for (int i = 0; i < 3; ++i) last = node->accepted("globex", "g-" + std::to_string(i), open_account(7));
    node->wait_for_position(last);
  }

  grpc_answer call(const request& r, const std::multimap<std::string, std::string>& metadata = {}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (r.tenant) ctx.AddMetadata("x-tenant-id", *r.tenant);
    for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    esflow::v1::QueryResponse out;
    const auto st = stub->Query(&ctx, r.proto(), &out);
    grpc_answer a;
    a.status = st.error_code();
    a.message = st.error_message();
    for (const auto& [k, v] : ctx.GetServerTrailingMetadata())
      if (str(k) == "esflow-code") a.esflow_code = str(v);
    for (const auto& [k, v] : ctx.GetServerInitialMetadata()) a.initial.emplace(str(k), str(v));
    if (!st.ok()) return a;
    a.body = {{"rows", json::array()}, {"position", out.position()}};
    for (const auto& row : out.rows())
      a.body["rows"].push_back(
          {{"key", row.key()}, {"version", row.version()}, {"row", json::parse(row.row_json())}});
    a.body["next_cursor"] = out.has_next_cursor() ? json(out.next_cursor()) : json(nullptr);
    return a;
  }

  std::pair<int, json> http(const request& r) {
    httplib::Headers h;
    if (r.tenant) h.emplace("x-tenant-id", *r.tenant);  // also an empty one
    auto res = node->client().Get("/v1/query/" + r.view, r.params(), h);
    EXPECT_TRUE(res);
    if (!res) return {0, nullptr};
    return {res->status, json::parse(res->body)};
  }

  // The same answer both ways; returns it (HTTP's JSON).
  json expect_same_answer(const request& r) {
    const auto [status, body] = http(r);
    const auto g = call(r);
    EXPECT_EQ(status, 200) << body.dump();
    EXPECT_EQ(g.status, grpc::OK) << g.message;
    // A cursor ends with the id of the store snapshot its pages read (16 hex
    // digits; 0 in key order): each request of an index or sorted order
    // takes its own snapshot, so only the rest must be equal.
    auto without_snapshot = [](json b) {
      if (b.is_object() && b["next_cursor"].is_string()) {
        auto c = b["next_cursor"].get<std::string>();
        b["next_cursor"] = c.size() > 16 ? c.substr(0, c.size() - 16) : c;
      }
      return b;
    };
    EXPECT_EQ(without_snapshot(g.body), without_snapshot(body));
    return body;
  }

  // The same rejection both ways.
  void expect_same_rejection(const request& r, const std::string& code, grpc::StatusCode want,
                             bool same_message = true) {
    const auto [status, body] = http(r);
    const auto g = call(r);
    EXPECT_EQ(body.value("code", ""), code) << body.dump();
    EXPECT_EQ(g.status, want) << g.message;
    EXPECT_EQ(g.esflow_code, code);
    EXPECT_FALSE(g.message.empty());
    if (same_message) {
      EXPECT_EQ(g.message, body.value("message", "")) << body.dump();
    }
  }

  std::unique_ptr<projection_node> node;
  std::unique_ptr<esflow::v1::QueryService::Stub> stub;
  std::uint64_t last = 0;
};

TEST_F(projection_grpc, queries_answer_the_same_rows_cursor_and_position_as_http) {
  std::vector<request> requests;
  requests.push_back({});
  {
    request r;
    r.filter = "balance > 50";
    requests.push_back(r);
    r.filter = "open = true and balance <= 40";
    requests.push_back(r);
    r.filter = "";
    requests.push_back(r);
    r.filter = "key in [\"acc-1\", \"acc-2\"] or not exists(balance)";
    requests.push_back(r);
  }
  for (const char* order : {"balance", "balance:desc", "key", "open"}) {
    request r;
    r.order_by = order;
    r.limit = 5;
    requests.push_back(r);
  }
  {
    request r;
    r.limit = 3;
    requests.push_back(r);
    r.limit = 5000;  // clamped
    requests.push_back(r);
    r = {};
    r.view = "account_activity";
    r.filter = "deposits >= 1";
    requests.push_back(r);
    r = {};
    r.tenant = "globex";
    requests.push_back(r);
    r = {};
    r.min_position = last;  // reached
    r.wait_ms = 1000;
    requests.push_back(r);
    r = {};
    r.min_position = 0;
    requests.push_back(r);
  }
  for (const auto& r : requests) {
    SCOPED_TRACE(r.proto().ShortDebugString());
    expect_same_answer(r);
  }
}

TEST_F(projection_grpc, paging_with_next_cursor_gives_the_same_pages_both_ways) {
  for (const std::optional<std::string>& order :
       {std::optional<std::string>(), std::optional<std::string>("balance"),
        std::optional<std::string>("balance:desc")}) {
    SCOPED_TRACE(order.value_or("(key order)"));
    request r;
    r.order_by = order;
    r.limit = 4;
    std::set<std::string> keys;
    for (int page = 0; page < 10; ++page) {
      const auto body = expect_same_answer(r);
      ASSERT_TRUE(body.is_object());
      for (const auto& row : body["rows"]) EXPECT_TRUE(keys.insert(row["key"].get<std::string>()).second);
      if (body["next_cursor"].is_null()) break;
      r.cursor = body["next_cursor"].get<std::string>();  // an HTTP cursor continues a gRPC query and back
    }
    EXPECT_EQ(keys.size(), 12U);
  }
}

TEST_F(projection_grpc, bad_requests_are_the_same_rejections_with_the_contracts_grpc_status) {
  request r;
  r.filter = "balance >";
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
  r = {};
  r.view = "no_such_view";
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
  r = {};
  r.cursor = "not-a-cursor";
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
  r = {};
  r.limit = 0;
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
  r = {};
  r.order_by = "balance:sideways";
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
  // min_position not reached within wait_ms.
  r = {};
  r.min_position = last + 1000;
  r.wait_ms = 50;
  expect_same_rejection(r, "unavailable", grpc::UNAVAILABLE);
  // Tenant: missing (the messages name the header / the metadata), invalid.
  r = {};
  r.tenant.reset();
  expect_same_rejection(r, "invalid_tenant", grpc::INVALID_ARGUMENT, false);
  r.tenant = "bad.tenant";
  expect_same_rejection(r, "invalid_tenant", grpc::INVALID_ARGUMENT);
  r.tenant = "";  // HTTP drops an empty header: the messages differ
  expect_same_rejection(r, "invalid_tenant", grpc::INVALID_ARGUMENT, false);
}

TEST_F(projection_grpc, a_cursor_of_another_tenant_is_invalid_query_both_ways) {
  request r;
  r.limit = 2;
  const auto first = expect_same_answer(r);
  ASSERT_TRUE(first["next_cursor"].is_string()) << first.dump();
  r.tenant = "globex";
  r.cursor = first["next_cursor"].get<std::string>();
  expect_same_rejection(r, "invalid_query", grpc::INVALID_ARGUMENT);
}

TEST_F(projection_grpc, answers_echo_correlation_trace_and_tenant_in_initial_metadata) {
  const std::string traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const auto a =
      call({}, {{"x-correlation-id", "corr-42"}, {"traceparent", traceparent}, {"x-request-id", "r-1"}});
  ASSERT_EQ(a.status, grpc::OK) << a.message;
  auto one = [&](const char* k) {
    auto it = a.initial.find(k);
    return it == a.initial.end() ? std::string("(none)") : it->second;
  };
  EXPECT_EQ(one("x-correlation-id"), "corr-42");
  EXPECT_EQ(one("traceparent"), traceparent);
  EXPECT_EQ(one("tenant-id"), "acme");
  EXPECT_EQ(one("x-request-id"), "r-1");
  // Invalid ones are replaced; a rejection carries them too.
  request bad;
  bad.filter = "(";
  const auto b = call(bad, {{"x-correlation-id", "has space"}, {"traceparent", "nonsense"}});
  EXPECT_EQ(b.status, grpc::INVALID_ARGUMENT);
  EXPECT_NE(b.initial.count("x-correlation-id"), 0U);
  EXPECT_NE(b.initial.find("x-correlation-id")->second, "has space");
  ASSERT_NE(b.initial.count("traceparent"), 0U);
  EXPECT_NE(b.initial.find("traceparent")->second, "nonsense");
  EXPECT_EQ(b.initial.find("tenant-id")->second, "acme");
}

// The node host stops the gRPC server with the nodes: a later call finds no server.
TEST_F(projection_grpc, stopping_the_node_stops_the_grpc_server) {
  ASSERT_EQ(call({}).status, grpc::OK);
  node->stop();
  EXPECT_EQ(call({}).status, grpc::UNAVAILABLE);
}

TEST(projection_grpc_off, no_grpc_setting_means_no_grpc_server) {
  projection_node node(backend::embedded);
  EXPECT_TRUE(node.grpc_target().empty());
}

}  // namespace
}  // namespace esflow::projection_test
