// Stream policy against a real server: missing -> created, compatible
// superset -> accepted, incompatible -> error naming the field, stream unchanged.
#include "transport/nats/stream_policy.h"

#include "tests/storage/jetstream/jetstream_env.h"

#include <gtest/gtest.h>

#include <vector>

namespace esflow::nats::testing {
namespace {

class stream_policy : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = nats_connection::connect(test_connection_options(shared_server().url()));
    ASSERT_TRUE(c.ok()) << c.err().to_string();
    _conn = std::move(c).value();
    for (const char* s : {"AGGREGATE_EVENTS", "WORKFLOW_COMMANDS", "WORKFLOW_EVENTS"})
      delete_stream(*_conn, s);
    jsOptions jo;
    jsOptions_Init(&jo);
    auto js = _conn->jetstream(jo);
    ASSERT_TRUE(js.ok());
    _js = *js;
  }
  void TearDown() override {
    if (_js != nullptr) jsCtx_Destroy(_js);
  }

  // Creates AGGREGATE_EVENTS by hand, as an operator would.
  void create(std::vector<const char*> subjects, std::chrono::seconds window, jsStorageType storage,
              bool allow_direct = true, jsRetentionPolicy retention = js_LimitsPolicy) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = "AGGREGATE_EVENTS";
    cfg.Subjects = subjects.data();
    cfg.SubjectsLen = static_cast<int>(subjects.size());
    cfg.Storage = storage;
    cfg.Retention = retention;
    cfg.AllowDirect = allow_direct;
    cfg.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(window).count();
    jsStreamInfo* si = nullptr;
    ASSERT_EQ(js_AddStream(&si, _js, &cfg, nullptr, nullptr), NATS_OK);
    jsStreamInfo_Destroy(si);
  }

  struct snapshot {
    std::vector<std::string> subjects;
    std::int64_t duplicates = 0;
    jsStorageType storage = js_FileStorage;
  };
  snapshot current() {
    snapshot s;
    jsStreamInfo* si = nullptr;
    EXPECT_EQ(js_GetStreamInfo(&si, _js, "AGGREGATE_EVENTS", nullptr, nullptr), NATS_OK);
    if (si == nullptr) return s;
    for (int i = 0; i < si->Config->SubjectsLen; ++i) s.subjects.emplace_back(si->Config->Subjects[i]);
    s.duplicates = si->Config->Duplicates;
    s.storage = si->Config->Storage;
    jsStreamInfo_Destroy(si);
    return s;
  }

  void expect_refused(const std::string& field) {
    auto before = current();
    auto r = ensure_stream(_js, aggregate_events_spec());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.err().code, errc::invalid_config);
    EXPECT_NE(r.err().message.find("field '" + field + "'"), std::string::npos) << r.err().message;
    EXPECT_NE(r.err().message.find("AGGREGATE_EVENTS"), std::string::npos) << r.err().message;
    auto after = current();
    EXPECT_EQ(after.subjects, before.subjects);
    EXPECT_EQ(after.duplicates, before.duplicates);
    EXPECT_EQ(after.storage, before.storage);
  }

  std::unique_ptr<nats_connection> _conn;
  jsCtx* _js = nullptr;
};

TEST_F(stream_policy, missing_streams_are_created_with_contract_settings) {
  ASSERT_TRUE(ensure_streams(_js).ok());
  auto s = current();
  EXPECT_EQ(s.subjects, std::vector<std::string>{"tenant.*.aggregate.>"});
  EXPECT_GE(s.duplicates,
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::minutes(2)).count());
  EXPECT_EQ(s.storage, js_FileStorage);
  // Present now: validated, not created again.
  auto again = ensure_stream(_js, aggregate_events_spec());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, stream_outcome::validated);
  auto wc = ensure_stream(_js, workflow_commands_spec());
  ASSERT_TRUE(wc.ok());
  EXPECT_EQ(*wc, stream_outcome::validated);
}

TEST_F(stream_policy, compatible_superset_is_accepted_and_left_alone) {
  create({"tenant.*.aggregate.>", "audit.>"}, std::chrono::seconds(600), js_FileStorage);
  auto r = ensure_stream(_js, aggregate_events_spec());
  ASSERT_TRUE(r.ok()) << r.err().to_string();
  EXPECT_EQ(*r, stream_outcome::validated);
  auto s = current();
  EXPECT_EQ(s.subjects.size(), 2u);
  EXPECT_EQ(s.duplicates,
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::seconds(600)).count());
}

TEST_F(stream_policy, wider_subject_covers_the_required_one) {
  create({"tenant.>"}, std::chrono::seconds(120), js_FileStorage);
  EXPECT_TRUE(ensure_stream(_js, aggregate_events_spec()).ok());
}

TEST_F(stream_policy, missing_subject_is_refused_naming_subjects) {
  create({"tenant.acme.aggregate.>"}, std::chrono::seconds(120), js_FileStorage);
  expect_refused("subjects");
}

TEST_F(stream_policy, smaller_duplicate_window_is_refused) {
  create({"tenant.*.aggregate.>"}, std::chrono::seconds(60), js_FileStorage);
  expect_refused("duplicate_window");
}

TEST_F(stream_policy, other_storage_is_refused) {
  create({"tenant.*.aggregate.>"}, std::chrono::seconds(120), js_MemoryStorage);
  expect_refused("storage");
}

TEST_F(stream_policy, other_retention_is_refused) {
  create({"tenant.*.aggregate.>"}, std::chrono::seconds(120), js_FileStorage, true, js_InterestPolicy);
  expect_refused("retention");
}

TEST_F(stream_policy, missing_allow_direct_is_refused) {
  create({"tenant.*.aggregate.>"}, std::chrono::seconds(120), js_FileStorage, false);
  expect_refused("allow_direct");
}

TEST_F(stream_policy, event_log_open_fails_on_an_incompatible_stream) {
  create({"tenant.*.aggregate.>"}, std::chrono::seconds(30), js_FileStorage);
  storage::testing::temp_dir dir;
  auto d = storage::node_store::open({.data_dir = dir.str(), .mode = storage::durability::relaxed});
  ASSERT_TRUE(d.ok());
  auto log = jetstream_event_log::open(*_conn, **d, {});
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.err().message.find("duplicate_window"), std::string::npos) << log.err().message;
  ASSERT_TRUE((*d)->close().ok());
}

}  // namespace
}  // namespace esflow::nats::testing
