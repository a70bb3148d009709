// Published commits seen from a separate NATS client: subject, headers, body.
#include "transport/nats/headers.h"

#include "schemas/ids.h"
#include "schemas/json_decode.h"
#include "tests/storage/jetstream/jetstream_env.h"
#include "tests/storage/requests.h"
#include "transport/nats/durability_check.h"

#include <gtest/gtest.h>

namespace esflow::nats::testing {
namespace {

using storage::testing::make_request;

struct subscriber {
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  explicit subscriber(const std::string& url, const char* subject) {
    EXPECT_EQ(natsConnection_ConnectTo(&nc, url.c_str()), NATS_OK);
    EXPECT_EQ(natsConnection_SubscribeSync(&sub, nc, subject), NATS_OK);
    EXPECT_EQ(natsConnection_Flush(nc), NATS_OK);
  }
  ~subscriber() {
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
  }
  natsMsg* next() {
    natsMsg* m = nullptr;
    EXPECT_EQ(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    return m;
  }
};

std::string header(natsMsg* m, const char* key) { return get_header(m, key).value_or("<missing>"); }

void expect_contract_headers(natsMsg* m, const std::string& tenant_token, const std::string& msg_id,
                             std::size_t events) {
  EXPECT_EQ(header(m, "tenant-id"), tenant_token);
  EXPECT_EQ(header(m, "Nats-Msg-Id"), msg_id);
  auto corr = header(m, "x-correlation-id");
  EXPECT_EQ(header(m, "correlation-id"), corr);
  EXPECT_TRUE(schemas::is_valid_correlation_id(corr)) << corr;
  auto tp = header(m, "traceparent");
  auto parsed = schemas::parse_traceparent(tp);
  ASSERT_TRUE(parsed.has_value()) << tp;
  EXPECT_EQ(header(m, "trace-id"), std::string(parsed->trace_id));
  EXPECT_EQ(header(m, "esflow-event-count"), std::to_string(events));
  std::string_view body(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
  auto c = schemas::decode_commit(body);
  ASSERT_TRUE(c.ok()) << c.err().to_string();
  EXPECT_EQ(c->events.size(), events);
}

TEST(jetstream_headers, commit_carries_contract_headers_seen_by_another_client) {
  jetstream_env env(shared_server());
  subscriber s(shared_server().url(), "tenant.>");
  auto r = storage::append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "cmd-1", 0, 3));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  natsMsg* m = s.next();
  ASSERT_NE(m, nullptr);
  EXPECT_STREQ(natsMsg_GetSubject(m), "tenant.acme.aggregate.Account.acc-1");
  expect_contract_headers(m, "acme", "acme:cmd-1", 3);
  // The events' correlation and trace ids are kept.
  EXPECT_EQ(header(m, "x-correlation-id"), "corr-cmd-1");
  EXPECT_EQ(header(m, "trace-id"), "0af7651916cd43dd8448eb211c80319c");
  natsMsg_Destroy(m);
}

TEST(jetstream_headers, empty_tenant_and_invalid_trace_get_underscore_and_fresh_ids) {
  jetstream_env env(shared_server());
  subscriber s(shared_server().url(), "tenant.>");
  auto req = make_request("", "Account", "acc-1", "cmd-2", 0, 1);
  req.events[0].trace_id = "NOT-HEX";
  req.events[0].correlation_id = "bad id with spaces";
  auto r = storage::append_and_wait(env.log(), std::move(req));
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  natsMsg* m = s.next();
  ASSERT_NE(m, nullptr);
  EXPECT_STREQ(natsMsg_GetSubject(m), "tenant._.aggregate.Account.acc-1");
  expect_contract_headers(m, "_", "_:cmd-2", 1);
  EXPECT_NE(header(m, "x-correlation-id"), "bad id with spaces");
  natsMsg_Destroy(m);
}

TEST(jetstream_headers, stored_message_keeps_headers) {
  jetstream_env env(shared_server());
  auto r = storage::append_and_wait(env.log(), make_request("globex", "Account", "a-9", "cmd-9", 0, 2));
  ASSERT_TRUE(r.ok());
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = env.connection().jetstream(jo);
  ASSERT_TRUE(js.ok());
  natsMsg* m = nullptr;
  ASSERT_EQ(js_GetMsg(&m, *js, "AGGREGATE_EVENTS", r->position, nullptr, nullptr), NATS_OK);
  expect_contract_headers(m, "globex", "globex:cmd-9", 2);
  natsMsg_Destroy(m);
  jsCtx_Destroy(*js);
}

TEST(jetstream_log, resend_after_reopen_is_answered_from_dedupe_cf_without_publishing) {
  jetstream_env env(shared_server());
  auto first = storage::append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 2));
  ASSERT_TRUE(first.ok());
  env.reopen();
  auto again = storage::append_and_wait(env.log(), make_request("acme", "Account", "acc-1", "c1", 0, 2));
  ASSERT_TRUE(again.ok()) << again.err().to_string();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->position, first->position);
  auto st = env.jetstream().stats();
  EXPECT_EQ(st.local_duplicates, 1u);
  EXPECT_EQ(st.publishes, 0u);  // beyond any duplicate window: JetStream was never asked
}

TEST(jetstream_log, lost_answer_resend_is_a_duplicate_via_the_msg_id_window) {
  // Node A commits; node B (own dedupe CF, same stream) gets the client's
  // resend with the stale expected version: the answer is the original.
  jetstream_env a(shared_server());
  auto first = storage::append_and_wait(a.log(), make_request("acme", "Account", "acc-1", "c1", 0, 2));
  ASSERT_TRUE(first.ok());
  jetstream_env b(shared_server(), {}, /*fresh=*/false);
  auto again = storage::append_and_wait(b.log(), make_request("acme", "Account", "acc-1", "c1", 0, 2));
  ASSERT_TRUE(again.ok()) << again.err().to_string();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->position, first->position);
  EXPECT_EQ(again->last_version, 2u);
  EXPECT_EQ(b.jetstream().stats().server_duplicates, 1u);

  auto other = storage::append_and_wait(b.log(), make_request("acme", "Account", "acc-1", "c1", 0, 2, "zz"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.err().code, errc::command_id_reused);
  auto stale = storage::append_and_wait(b.log(), make_request("acme", "Account", "acc-1", "c2", 1, 1));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().code, errc::version_conflict);
  EXPECT_EQ(stale.err().message, "expected version 1, actual 2");
  auto read = b.log().read("acme", "Account", "acc-1", 0, 100);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 2u);
}

TEST(jetstream_log, other_node_moved_the_aggregate_and_the_cache_catches_up) {
  jetstream_env a(shared_server());
  jetstream_env b(shared_server(), {}, /*fresh=*/false);
  ASSERT_TRUE(storage::append_and_wait(a.log(), make_request("acme", "Account", "x", "c1", 0, 1)).ok());
  ASSERT_TRUE(storage::append_and_wait(b.log(), make_request("acme", "Account", "x", "c2", 1, 1)).ok());
  // a's cache says version 1; the server has 2.
  auto stale = storage::append_and_wait(a.log(), make_request("acme", "Account", "x", "c3", 1, 1));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.err().message, "expected version 1, actual 2");
  auto ok = storage::append_and_wait(a.log(), make_request("acme", "Account", "x", "c4", 2, 1));
  ASSERT_TRUE(ok.ok()) << ok.err().to_string();
  EXPECT_EQ(ok->last_version, 3u);
}

TEST(durability_check, debian_server_is_neither_fsynced_nor_replicated) {
  jetstream_env env(shared_server());
  jsOptions jo;
  jsOptions_Init(&jo);
  auto js = env.connection().jetstream(jo);
  ASSERT_TRUE(js.ok());
  auto r = check_durability(shared_server().url(), *js, "AGGREGATE_EVENTS");
  jsCtx_Destroy(*js);
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_FALSE(r->server_version.empty());
  EXPECT_EQ(r->replicas, 1);
  EXPECT_FALSE(r->replicated);
  if (r->major == 2 && r->minor < 10) {
    EXPECT_FALSE(r->fsync_capable);
    EXPECT_NE(r->warning.find("neither fsynced nor replicated"), std::string::npos) << r->warning;
  }
  EXPECT_NE(r->description.find(r->server_version), std::string::npos);
}

}  // namespace
}  // namespace esflow::nats::testing
