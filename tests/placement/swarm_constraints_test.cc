// Tenant ranges to Docker Swarm constraints (placement/swarm_constraints.h).
#include "placement/swarm_constraints.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace esflow::placement {
namespace {

TEST(placement_swarm_constraints, prints_one_stanza_per_range) {
  auto out = swarm_constraints("a-h,i-p,q-z");
  ASSERT_TRUE(out.ok()) << out.err().to_string();
  EXPECT_EQ(
      *out,
      "aggregate-a-h:\n  deploy:\n    placement:\n      constraints: [node.labels.tenant_range==a-h]\n"
      "aggregate-i-p:\n  deploy:\n    placement:\n      constraints: [node.labels.tenant_range==i-p]\n"
      "aggregate-q-z:\n  deploy:\n    placement:\n      constraints: [node.labels.tenant_range==q-z]\n");
}

TEST(placement_swarm_constraints, rejects_overlapping_ranges_naming_both) {
  auto out = swarm_constraints("a-h, g-p");
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.err().code, errc::invalid_config);
  EXPECT_EQ(out.err().message, "ranges 'a-h' and 'g-p' overlap");
}

TEST(placement_swarm_constraints, rejects_malformed_ranges) {
  struct bad_case {
    const char* spec;
    const char* message;
  };
  for (const auto& c : {
           bad_case{"a-h,,q-z", "empty range in 'a-h,,q-z'"},
           bad_case{"h-a", "range 'h-a' ends before it starts"},
           bad_case{"a-9",
                    "range 'a-9' is not <first>-<last> or one character (lowercase letters or digits)"},
           bad_case{"abc",
                    "range 'abc' is not <first>-<last> or one character (lowercase letters or digits)"},
           bad_case{"A-H",
                    "range 'A-H' is not <first>-<last> or one character (lowercase letters or digits)"},
           bad_case{"", "empty range in ''"},
       }) {
    auto r = parse_ranges(c.spec);
    ASSERT_FALSE(r.ok()) << c.spec;
    EXPECT_EQ(r.err().message, c.message) << c.spec;
  }
}

TEST(placement_swarm_constraints, range_of_finds_the_range_of_the_first_character) {
  auto ranges = parse_ranges("0-9,a-h,i-p,q-z");
  ASSERT_TRUE(ranges.ok());
  EXPECT_EQ(range_of("acme", *ranges)->name, "a-h");
  EXPECT_EQ(range_of("Initech", *ranges)->name, "i-p");  // letters compare case-insensitively
  EXPECT_EQ(range_of("zeta", *ranges)->name, "q-z");
  EXPECT_EQ(range_of("42corp", *ranges)->name, "0-9");
  EXPECT_FALSE(range_of("_", *ranges).has_value());
  EXPECT_FALSE(range_of("", *ranges).has_value());
  auto partial = parse_ranges("a-c");
  ASSERT_TRUE(partial.ok());
  EXPECT_FALSE(range_of("zeta", *partial).has_value());
}

TEST(placement_swarm_constraints, reads_ranges_from_a_json_or_yaml_file) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("esflow-ranges-" + std::to_string(::getpid()) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "r.json") << R"({"ranges": ["a-m", "n-z"]})";
  std::ofstream(dir / "r.yaml") << "ranges:\n  - a-m\n  - n-z\n";
  std::ofstream(dir / "bad.yaml") << "ranges:\n  - a-m\n  - m-z\n";
  for (const char* name : {"r.json", "r.yaml"}) {
    auto r = load_ranges_file(dir / name);
    ASSERT_TRUE(r.ok()) << r.err().to_string();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_EQ((*r)[1].name, "n-z");
  }
  auto bad = load_ranges_file(dir / "bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().message, (dir / "bad.yaml").string() + ": ranges 'a-m' and 'm-z' overlap");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace esflow::placement
