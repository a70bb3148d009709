// The placement file: round trip, atomic replace, errors naming the file
// (placement/placement_file.h).
#include "placement/placement_file.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace esflow::placement {
namespace {

class placement_file_test : public ::testing::Test {
 protected:
  void SetUp() override {
    _dir = std::filesystem::temp_directory_path() /
           ("esflow-placement-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(_dir);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(_dir, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& text) {
    auto p = _dir / name;
    std::ofstream(p) << text;
    return p;
  }
  std::filesystem::path _dir;
};

TEST_F(placement_file_test, round_trips_nodes_and_tenants) {
  placement_map::node_table nodes;
  nodes["agg-1"] = {"agg-1", {"aggregate"}, "127.0.0.1:8081", "127.0.0.1:9091", "2026-12-05T12:00:00.000Z"};
  nodes["proj-1"] = {"proj-1", {"projection"}, "127.0.0.1:8082", "", "2026-12-05T12:00:01.000Z"};
  auto m = placement_map::make(nodes, {{"acme", "agg-1"}, {"globex", ""}, {"", "agg-1"}});
  ASSERT_TRUE(m.ok()) << m.err().to_string();
  const auto path = _dir / "placement.json";
  auto saved = save_placement_file(path, *m);
  ASSERT_TRUE(saved.ok()) << saved.err().to_string();
  auto back = load_placement_file(path);
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->json(), m->json());
  EXPECT_EQ(back->owner("acme"), "agg-1");
  EXPECT_EQ(back->owner(""), "agg-1");
  EXPECT_EQ(back->owner("globex"), "agg-1");  // the only aggregate node on the ring
  // No temp file is left beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(_dir)) {
    ++files;
    EXPECT_EQ(e.path().filename(), "placement.json");
  }
  EXPECT_EQ(files, 1);
}

TEST_F(placement_file_test, save_replaces_an_existing_file) {
  const auto path = write("placement.json", "old");
  auto m = placement_map::make({}, {{"acme", "agg-2"}});
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(save_placement_file(path, *m).ok());
  auto back = load_placement_file(path);
  ASSERT_TRUE(back.ok()) << back.err().to_string();
  EXPECT_EQ(back->owner("acme"), "agg-2");
}

TEST_F(placement_file_test, a_malformed_file_is_an_error_naming_the_file) {
  const auto path = write("broken.json", "{\"nodes\": {");
  auto r = load_placement_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_config);
  EXPECT_EQ(r.err().message, path.string() + ": not valid JSON");
  EXPECT_NE(r.err().context.find("file=" + path.string()), std::string::npos) << r.err().context;
}

TEST_F(placement_file_test, a_bad_entry_is_an_error_naming_the_file_and_the_key) {
  const auto bad_node = write("bad-node.json", R"({"nodes":{"agg-1":{"node":"agg-1","kinds":"aggregate"}}})");
  auto r = load_placement_file(bad_node);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, bad_node.string() + ": nodes.agg-1: field 'kinds' is not an array");
  const auto bad_tenant = write("bad-tenant.json", R"({"tenants":{"acme":7}})");
  r = load_placement_file(bad_tenant);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, bad_tenant.string() + ": tenant 'acme' maps to a non-string");
  const auto bad_id = write("bad-id.json", R"({"tenants":{"a b":""}})");
  r = load_placement_file(bad_id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, bad_id.string() + ": tenants.a b: tenant id is not [A-Za-z0-9_-]{1,64}");
}

TEST_F(placement_file_test, a_missing_file_is_not_found) {
  auto r = load_placement_file(_dir / "none.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::not_found);
  EXPECT_EQ(r.err().message, (_dir / "none.json").string() + ": no such file");
}

}  // namespace
}  // namespace esflow::placement
