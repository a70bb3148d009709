// Programs, content hashes and the program cache (load, reload, in-flight safety).
#include "tests/runtime/test_util.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace esflow::runtime {
namespace {

using testing::decide_one;

class temp_dir {
 public:
  temp_dir() {
    _path = std::filesystem::temp_directory_path() /
            ("esflow_runtime_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(_path);
    std::filesystem::create_directories(_path);
  }
  ~temp_dir() { std::filesystem::remove_all(_path); }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    auto p = _path / name;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    return p;
  }

 private:
  std::filesystem::path _path;
};

std::string version_program(int v) {
  return "function decide() return {{type = 'v', v = " + std::to_string(v) + "}} end\n";
}

TEST(content_hash, is_stable_and_sensitive) {
  auto a = content_hash::of("function decide() end");
  EXPECT_EQ(a, content_hash::of("function decide() end"));
  EXPECT_NE(a, content_hash::of("function decide() end "));
  EXPECT_NE(content_hash::of(""), content_hash::of(std::string(1, '\0')));
  // SHA-256 (FIPS 180-2 test vectors): what sha256sum prints, lowercase.
  EXPECT_EQ(content_hash::of("").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(content_hash::of("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(content_hash::from_hex(a.to_hex()), a);
  EXPECT_FALSE(content_hash::from_hex("abc").has_value());
}

TEST(load_program, hash_is_the_sha256sum_of_the_file) {
  temp_dir dir;
  auto path = dir.write("Account.lua", version_program(1));
  auto p = load_program(path);
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  // `sha256sum Account.lua` of this exact file content.
  EXPECT_EQ((*p)->hash().to_hex(), "1ef8bc8b43a4f42d34c03752e7bd89aeae64e37ad403c92c57906127b3c65a23");
}

TEST(program, key_includes_path_but_hash_does_not) {
  program a("t", "/a.lua", "x = 1");
  program b("t", "/b.lua", "x = 1");
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_NE(a.compile_key(), b.compile_key());
}

TEST(load_program, reads_file_and_names_it_by_stem) {
  temp_dir dir;
  auto path = dir.write("Account.lua", version_program(1));
  auto p = load_program(path);
  ASSERT_TRUE(p.ok()) << p.err().to_string();
  EXPECT_EQ((*p)->name(), "Account");
  EXPECT_EQ((*p)->path(), path.string());
  EXPECT_EQ((*p)->hash(), content_hash::of(version_program(1)));

  auto missing = load_program(path.parent_path() / "nope.lua");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::invalid_config);
  EXPECT_EQ(missing.err().message, "cannot open program file");

  auto broken = load_program(dir.write("broken.lua", "function decide(\n"));
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.err().code, errc::program_error);
  EXPECT_NE(broken.err().message.find("broken.lua:2:"), std::string::npos) << broken.err().message;
}

TEST(program_cache, caches_by_path_and_content) {
  temp_dir dir;
  auto path = dir.write("acc.lua", version_program(1));
  program_cache cache;
  auto first = cache.get(path);
  ASSERT_TRUE(first.ok());
  auto second = cache.get(path);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());
  // Reloading unchanged content keeps the same program object.
  auto same = cache.reload(path);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->get(), first->get());
  EXPECT_EQ(cache.size(), 1u);
}

TEST(program_cache, reload_swaps_without_invalidating_in_flight_programs) {
  temp_dir dir;
  auto path = dir.write("acc.lua", version_program(1));
  program_cache cache;
  program_ptr in_flight = *cache.get(path);

  dir.write("acc.lua", version_program(2));
  EXPECT_EQ(cache.get(path)->get(), in_flight.get());  // get() does not re-read the file
  auto fresh = cache.reload(path);
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->get(), in_flight.get());
  EXPECT_EQ(cache.get(path)->get(), fresh->get());

  // Work that started with v1 finishes with v1 while new work runs v2, in one sandbox.
  sandbox sb;
  EXPECT_EQ(decide_one(sb, *in_flight), R"({"type":"v","v":1})");
  EXPECT_EQ(decide_one(sb, **fresh), R"({"type":"v","v":2})");
  EXPECT_EQ(decide_one(sb, *in_flight), R"({"type":"v","v":1})");
  EXPECT_EQ(sb.compiled_programs(), 2u);
}

TEST(program_cache, failed_reload_keeps_the_current_program) {
  temp_dir dir;
  auto path = dir.write("acc.lua", version_program(1));
  program_cache cache;
  program_ptr current = *cache.get(path);
  dir.write("acc.lua", "function decide(\n");
  auto bad = cache.reload(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::program_error);
  EXPECT_EQ(cache.get(path)->get(), current.get());
}

TEST(program_cache, reload_back_to_a_held_version_reuses_it) {
  program_cache cache;
  program_ptr v1 = *cache.put("acc", "/p/acc.lua", version_program(1));
  program_ptr v2 = *cache.put("acc", "/p/acc.lua", version_program(2));
  EXPECT_NE(v1.get(), v2.get());
  program_ptr back = *cache.put("acc", "/p/acc.lua", version_program(1));
  EXPECT_EQ(back.get(), v1.get());
}

TEST(program_cache, is_thread_safe) {
  program_cache cache;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      sandbox sb;
      for (int i = 0; i < 200; ++i) {
        auto p = cache.put("acc", "/p/acc.lua", version_program((i + t) % 3));
        if (!p.ok()) {
          ++failures;
          continue;
        }
        auto out = decide_one(sb, **p);
        if (out.find("\"v\":") == std::string::npos) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(cache.size(), 1u);
}

}  // namespace
}  // namespace esflow::runtime
