// `esflow keys add` as the real binary: the key it prints authenticates
// against the file it wrote, and the file holds only the key's digest.
#include "common/sha256.h"
#include "stages/gateway/api_keys.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace esflow::gateway {
namespace {

namespace fs = std::filesystem;

class gateway_keys_cli_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    _dir = fs::temp_directory_path() /
           ("esflow-keys-cli-" + std::to_string(::getpid()) + "-" + std::string(info->name()));
    fs::remove_all(_dir);
    fs::create_directories(_dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(_dir, ec);
  }
  std::string file(const std::string& name) const { return (_dir / name).string(); }
  static std::string read(const std::string& path) {
    std::stringstream buf;
    buf << std::ifstream(path).rdbuf();
    return buf.str();
  }

  struct run_result {
    int code = -1;
    std::string out, err;
  };
  // In the test's directory, so the default ./keys.jsonl lands there.
  run_result run_esflow(const std::string& args, const std::string& env = "") const {
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    const auto out = file("stdout.txt"), err = file("stderr.txt");
    const auto cmd = "cd " + _dir.string() + " && env -u ESFLOW_KEYS_FILE " + env + " timeout 30 " + bin +
                     " " + args + " >" + out + " 2>" + err + " </dev/null";
    const int status = std::system(cmd.c_str());
    run_result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = read(out);
    r.err = read(err);
    return r;
  }

  fs::path _dir;
};

TEST_F(gateway_keys_cli_test, keys_add_prints_a_key_that_authenticates_and_stores_only_its_digest) {
  auto r = run_esflow("keys add --tenant acme --tenant globex --rights commands,queries --label 'acme app'");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(r.out.size(), 4U + 43U + 1U) << r.out;
  ASSERT_EQ(r.out.back(), '\n');
  const auto key = r.out.substr(0, r.out.size() - 1);
  EXPECT_EQ(key.substr(0, 4), "esk_");

  const auto path = file("keys.jsonl");
  const auto digest = sha256_digest::of(key).to_hex();
  EXPECT_EQ(r.err, "esflow keys add: only the key's SHA-256 digest (" + digest +
                       ") is stored, in ./keys.jsonl; the key above is not shown again\n");
  const auto text = read(path);
  EXPECT_EQ(text.find(key), std::string::npos) << "the file must not contain the key";
  EXPECT_EQ(text.find(key.substr(4)), std::string::npos) << "nor its random part";
  EXPECT_NE(text.find(digest), std::string::npos) << text;
  struct ::stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  auto set = api_key_set::load(path);
  ASSERT_TRUE(set.ok()) << set.err().to_string();
  auto grants = set->authenticate("Bearer " + key);
  ASSERT_TRUE(grants.ok()) << grants.err().to_string();
  EXPECT_EQ((*grants)->label, "acme app");
  EXPECT_TRUE(authorize(**grants, "globex", right::queries).ok());
  EXPECT_EQ(authorize(**grants, "initech", right::queries).err().code, errc::tenant_access_denied);
  EXPECT_EQ(authorize(**grants, "acme", right::admin).err().code, errc::forbidden);
}

TEST_F(gateway_keys_cli_test, keys_add_appends_to_the_file_of_flag_or_environment) {
  const auto via_env = file("env-keys.jsonl");
  auto a = run_esflow("keys add --tenant '*' --rights admin", "ESFLOW_KEYS_FILE=" + via_env);
  ASSERT_EQ(a.code, 0) << a.err;
  const auto via_flag = file("flag-keys.jsonl");
  auto b =
      run_esflow("keys add --tenant acme --rights queries --file " + via_flag, "ESFLOW_KEYS_FILE=" + via_env);
  ASSERT_EQ(b.code, 0) << b.err;
  auto c = run_esflow("keys add --tenant acme --rights commands --file " + via_flag);
  ASSERT_EQ(c.code, 0) << c.err;

  auto env_set = api_key_set::load(via_env);
  ASSERT_TRUE(env_set.ok()) << env_set.err().to_string();
  EXPECT_EQ(env_set->size(), 1U);
  auto admin = env_set->authenticate("Bearer " + a.out.substr(0, a.out.size() - 1));
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE((*admin)->all_tenants);
  auto flag_set = api_key_set::load(via_flag);
  ASSERT_TRUE(flag_set.ok()) << flag_set.err().to_string();
  EXPECT_EQ(flag_set->size(), 2U);
  EXPECT_TRUE(flag_set->authenticate("Bearer " + b.out.substr(0, b.out.size() - 1)).ok());
  EXPECT_TRUE(flag_set->authenticate("Bearer " + c.out.substr(0, c.out.size() - 1)).ok());
  EXPECT_FALSE(fs::exists(file("keys.jsonl")));
}

TEST_F(gateway_keys_cli_test, keys_add_refuses_a_bad_tenant_or_right_with_2_and_writes_nothing) {
  auto bad_right = run_esflow("keys add --tenant acme --rights commands,write");
  EXPECT_EQ(bad_right.code, 2);
  EXPECT_EQ(bad_right.out, "");
  EXPECT_EQ(bad_right.err, "esflow keys add: unknown right 'write' (rights: commands, queries, admin)\n");
  auto bad_tenant = run_esflow("keys add --tenant 'ac me' --rights commands");
  EXPECT_EQ(bad_tenant.code, 2);
  EXPECT_EQ(bad_tenant.err, "esflow keys add: bad tenant 'ac me': a tenant is [A-Za-z0-9_-]{1,64} or '*'\n");
  auto star_and_more = run_esflow("keys add --tenant '*' --tenant acme --rights commands");
  EXPECT_EQ(star_and_more.code, 2);
  EXPECT_EQ(star_and_more.err, "esflow keys add: '*' (all tenants) stands alone, without other tenants\n");
  auto no_tenant = run_esflow("keys add --rights commands");
  EXPECT_EQ(no_tenant.code, 2);
  EXPECT_FALSE(fs::exists(file("keys.jsonl")));
}

}  // namespace
}  // namespace esflow::gateway
