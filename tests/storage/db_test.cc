#include "storage/db.h"

#include "tests/storage/temp_dir.h"

#include <gtest/gtest.h>

#include <fstream>

namespace esflow::storage {
namespace {

using testing::temp_dir;

TEST(db, opens_creates_column_families_and_reopens) {
  temp_dir dir;
  for (int round = 0; round < 2; ++round) {
    auto d = db::open({.path = dir.str()});
    ASSERT_TRUE(d.ok()) << d.err().to_string();
    for (std::size_t i = 0; i < cf_count; ++i) EXPECT_NE((*d)->handle(static_cast<cf>(i)), nullptr);
    EXPECT_TRUE((*d)->close().ok());
    EXPECT_TRUE((*d)->close().ok());  // idempotent
  }
  EXPECT_EQ(to_string(cf::event_index), "event_index");
  EXPECT_EQ(to_string(cf::snapshots), "snapshots");
}

TEST(db, open_failure_is_unavailable_with_the_path) {
  temp_dir dir;
  auto file = dir.path() / "not-a-dir";
  std::ofstream(file) << "x";
  auto d = db::open({.path = file.string()});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::unavailable);
  EXPECT_NE(d.err().message.find("rocksdb open failed"), std::string::npos) << d.err().message;
  EXPECT_NE(d.err().context.find(file.string()), std::string::npos) << d.err().context;
}

TEST(db, second_open_of_the_same_directory_fails) {
  temp_dir dir;
  auto first = db::open({.path = dir.str()});
  ASSERT_TRUE(first.ok());
  auto second = db::open({.path = dir.str()});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.err().code, errc::unavailable);
}

}  // namespace
}  // namespace esflow::storage
