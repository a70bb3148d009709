// The gateway's API keys (stages/gateway/api_keys.h): authentication,
// authorization, the key file's format and its reload, key generation.
#include "stages/gateway/api_keys.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace esflow::gateway {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class gateway_keys_test : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    _dir = fs::temp_directory_path() /
           ("esflow-gateway-" + std::to_string(::getpid()) + "-" + std::string(info->name()));
    fs::remove_all(_dir);
    fs::create_directories(_dir);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(_dir, ec);
  }
  std::string file(const std::string& name) const { return (_dir / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(file(name), std::ios::trunc) << text;
    return file(name);
  }
  static std::string read(const std::string& path) {
    std::stringstream buf;
    buf << std::ifstream(path).rdbuf();
    return buf.str();
  }
  // A key line for `key` with the given tenants JSON ("[\"acme\"]" or "\"*\"") and rights.
  static std::string line_for(const std::string& key, const std::string& tenants, const std::string& rights,
                              const std::string& label = "test") {
    return R"({"sha256":")" + sha256_digest::of(key).to_hex() + R"(","tenants":)" + tenants +
           R"(,"rights":)" + rights + R"(,"label":")" + label + R"(","created":"2026-12-05T12:00:00Z"})" +
           "\n";
  }

  fs::path _dir;
};

const std::string k_acme_key = "esk_acme-commands-and-queries";
const std::string k_star_key = "esk_every-tenant-admin";

api_key_set two_keys() {
  auto set = api_key_set::parse(
      "# keys of the tests\n"
      "\n" +
          std::string(R"({"sha256":")") + sha256_digest::of(k_acme_key).to_hex() +
          R"(","tenants":["acme","globex"],"rights":["commands","queries"],"label":"acme app"})" + "\n" +
          R"(  {"sha256":")" + sha256_digest::of(k_star_key).to_hex() +
          R"(","tenants":"*","rights":["admin"],"label":"ops","created":"2026-12-05T12:00:00Z"})" + "\n",
      "keys.jsonl");
  EXPECT_TRUE(set.ok()) << set.err().to_string();
  return std::move(set).value();
}

TEST_F(gateway_keys_test, no_header_wrong_scheme_or_unknown_key_is_unauthenticated_without_echoing_it) {
  const auto set = two_keys();
  ASSERT_EQ(set.size(), 2U);
  struct attempt {
    std::string header, message;
  };
  for (const auto& a : std::vector<attempt>{
           {"", "no API key: send Authorization: Bearer <key>"},
           {"   ", "no API key: send Authorization: Bearer <key>"},
           {"Basic " + k_acme_key,
            "the Authorization header is not a Bearer API key: send Authorization: Bearer <key>"},
           {k_acme_key, "the Authorization header is not a Bearer API key: send Authorization: Bearer <key>"},
           {"Bearer ", "no API key after Bearer"},
           {"Bearer esk_not-a-key-we-know", "unknown API key"},
           {"Bearer " + k_acme_key + "x", "unknown API key"},
       }) {
    auto r = set.authenticate(a.header);
    ASSERT_FALSE(r.ok()) << a.header;
    EXPECT_EQ(r.err().code, errc::unauthenticated) << a.header;
    EXPECT_EQ(r.err().message, a.message) << a.header;
    EXPECT_EQ(r.err().to_string().find("esk_"), std::string::npos) << r.err().to_string();
  }
}

TEST_F(gateway_keys_test, a_bearer_key_authenticates_whatever_the_scheme_case) {
  const auto set = two_keys();
  for (const auto& h : {"Bearer " + k_acme_key, "bearer " + k_acme_key, "  BEARER   " + k_acme_key + " "}) {
    auto r = set.authenticate(h);
    ASSERT_TRUE(r.ok()) << h << ": " << r.err().to_string();
    EXPECT_EQ((*r)->label, "acme app");
    EXPECT_EQ((*r)->digest, sha256_digest::of(k_acme_key));
    EXPECT_EQ((*r)->tenants, (std::vector<std::string>{"acme", "globex"}));
  }
}

TEST_F(gateway_keys_test, a_tenant_the_key_lacks_is_tenant_access_denied) {
  const auto set = two_keys();
  auto g = set.authenticate("Bearer " + k_acme_key);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(authorize(**g, "acme", right::commands).ok());
  EXPECT_TRUE(authorize(**g, "globex", right::queries).ok());
  auto denied = authorize(**g, "initech", right::commands);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.err().code, errc::tenant_access_denied);
  EXPECT_EQ(denied.err().message, "API key 'acme app' is not granted tenant 'initech'");
  // The tenant is checked before the right: a key learns nothing of its rights elsewhere.
  auto both = authorize(**g, "initech", right::admin);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(both.err().code, errc::tenant_access_denied);
}

TEST_F(gateway_keys_test, a_right_the_key_lacks_is_forbidden) {
  const auto set = two_keys();
  auto g = set.authenticate("Bearer " + k_acme_key);
  ASSERT_TRUE(g.ok());
  auto denied = authorize(**g, "acme", right::admin);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.err().code, errc::forbidden);
  EXPECT_EQ(denied.err().message, "API key 'acme app' lacks the right 'admin'");
  auto ops = set.authenticate("Bearer " + k_star_key);
  ASSERT_TRUE(ops.ok());
  auto no_commands = authorize(**ops, "acme", right::commands);
  ASSERT_FALSE(no_commands.ok());
  EXPECT_EQ(no_commands.err().code, errc::forbidden);
  EXPECT_EQ(no_commands.err().message, "API key 'ops' lacks the right 'commands'");
}

// Runner admin is not tenant-scoped: only the right counts (docs/gateway.md "Auth").
TEST_F(gateway_keys_test, an_untenanted_call_checks_only_the_right) {
  const auto set = two_keys();
  auto ops = set.authenticate("Bearer " + k_star_key);
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(authorize_untenanted(**ops, right::admin).ok());
  auto acme = set.authenticate("Bearer " + k_acme_key);
  ASSERT_TRUE(acme.ok());
  auto denied = authorize_untenanted(**acme, right::admin);
  ASSERT_FALSE(denied.ok());
  EXPECT_EQ(denied.err().code, errc::forbidden);
  EXPECT_EQ(denied.err().message, "API key 'acme app' lacks the right 'admin'");
}

TEST_F(gateway_keys_test, star_tenants_allow_every_tenant) {
  const auto set = two_keys();
  auto ops = set.authenticate("Bearer " + k_star_key);
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE((*ops)->all_tenants);
  for (const auto* t : {"acme", "globex", "initech", ""})
    EXPECT_TRUE(authorize(**ops, t, right::admin).ok()) << t;
}

TEST_F(gateway_keys_test, a_malformed_line_fails_the_load_naming_file_and_line) {
  const auto good = line_for(k_acme_key, R"(["acme"])", R"(["commands"])");
  struct bad_case {
    std::string line, problem;
  };
  for (const auto& c : std::vector<bad_case>{
           {"{not json", "not valid JSON"},
           {"[1,2]", "not a JSON object"},
           {R"({"tenants":"*","rights":["admin"]})", "\"sha256\" missing or not a string"},
           {R"({"sha256":"abc","tenants":"*","rights":["admin"]})", "\"sha256\" is not 64 hex digits"},
           {line_for("k2", R"(["ac me"])", R"(["admin"])"),
            "\"tenants\" has \"ac me\": a tenant is [A-Za-z0-9_-]{1,64} (all tenants: \"tenants\":\"*\")"},
           {line_for("k2", R"("acme")", R"(["admin"])"), "\"tenants\" is a list of tenants or \"*\""},
           {line_for("k2", R"(["acme"])", R"(["write"])"),
            "\"rights\" has \"write\" (rights: commands, queries, admin)"},
           {line_for("k2", R"(["acme"])", R"([])"), "\"rights\" missing or not a non-empty list"},
           {line_for(k_acme_key, R"(["acme"])", R"(["admin"])"), "the same key digest as line 2"},
       }) {
    const auto path = write("keys.jsonl", "# two keys\n" + good + "\n" + c.line + "\n");
    auto set = api_key_set::load(path);
    ASSERT_FALSE(set.ok()) << c.line;
    EXPECT_EQ(set.err().code, errc::invalid_config);
    EXPECT_EQ(set.err().message, path + ":4: " + c.problem);
  }
  auto missing = api_key_set::load(file("absent.jsonl"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().message,
            "cannot read key file " + file("absent.jsonl") + ": No such file or directory");
}

// A store whose clock the test moves: reload() stats at most once per second.
struct fake_clock {
  api_key_store::clock::time_point t{std::chrono::hours(1)};
  api_key_store::options options() {
    return {std::chrono::milliseconds(1000), [this] { return t; }};
  }
};

TEST_F(gateway_keys_test, a_malformed_reload_keeps_the_old_set_until_the_file_is_fixed) {
  const auto path = write("keys.jsonl", line_for(k_acme_key, R"(["acme"])", R"(["commands"])"));
  fake_clock clock;
  auto store = api_key_store::open(path, clock.options());
  ASSERT_TRUE(store.ok()) << store.err().to_string();
  auto& s = **store;
  ASSERT_TRUE(s.authenticate("Bearer " + k_acme_key).ok());

  std::ofstream(path, std::ios::app) << "{\"sha256\": broken\n";
  clock.t += std::chrono::seconds(2);
  auto r = s.reload();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().message, path + ":2: not valid JSON");
  EXPECT_TRUE(s.authenticate("Bearer " + k_acme_key).ok()) << "the old set stays in use";
  EXPECT_EQ(s.stats().reload_failures, 1U);
  clock.t += std::chrono::seconds(2);
  EXPECT_TRUE(s.reload().ok()) << "an unchanged broken file is reported once";
  EXPECT_EQ(s.stats().reload_failures, 1U);

  write("keys.jsonl", line_for(k_star_key, "\"*\"", R"(["queries"])"));
  clock.t += std::chrono::seconds(2);
  ASSERT_TRUE(s.reload().ok());
  EXPECT_EQ(s.stats().reloads, 1U);
  EXPECT_FALSE(s.authenticate("Bearer " + k_acme_key).ok());
  EXPECT_TRUE(s.authenticate("Bearer " + k_star_key).ok());
}

TEST_F(gateway_keys_test, a_key_appended_by_append_api_key_is_accepted_after_reload_without_restart) {
  const auto path = file("keys.jsonl");
  auto first = append_api_key(path, {"acme"}, {"commands"}, "first");
  ASSERT_TRUE(first.ok()) << first.err().to_string();
  fake_clock clock;
  auto store = api_key_store::open(path, clock.options());
  ASSERT_TRUE(store.ok()) << store.err().to_string();
  auto& s = **store;
  ASSERT_TRUE(s.authenticate("Bearer " + *first).ok());

  auto second = append_api_key(path, {"*"}, {"queries", "admin"}, "second");
  ASSERT_TRUE(second.ok()) << second.err().to_string();
  // Within the check interval the file is not looked at.
  clock.t += std::chrono::milliseconds(500);
  auto early = s.authenticate("Bearer " + *second);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.err().code, errc::unauthenticated);
  clock.t += std::chrono::milliseconds(600);
  auto later = s.authenticate("Bearer " + *second);
  ASSERT_TRUE(later.ok()) << later.err().to_string();
  EXPECT_TRUE((*later)->all_tenants);
  EXPECT_TRUE((*later)->has(right::queries));
  EXPECT_TRUE((*later)->has(right::admin));
  EXPECT_FALSE((*later)->has(right::commands));
  EXPECT_EQ((*later)->label, "second");
  EXPECT_TRUE(s.authenticate("Bearer " + *first).ok());
  EXPECT_EQ(s.current()->size(), 2U);
  EXPECT_EQ(s.stats().reloads, 1U);

  const auto text = read(path);
  EXPECT_EQ(text.find(*first), std::string::npos) << "only digests are stored";
  EXPECT_EQ(text.find(*second), std::string::npos) << "only digests are stored";
  EXPECT_NE(text.find(sha256_digest::of(*second).to_hex()), std::string::npos);
}

TEST_F(gateway_keys_test, append_api_key_creates_the_file_0600_and_joins_no_unterminated_line) {
  const auto path = file("new.jsonl");
  const auto old_umask = ::umask(0);  // whatever the umask, the file is 0600
  auto key = append_api_key(path, {"acme", "globex"}, {"commands", "queries"}, "app");
  ::umask(old_umask);
  ASSERT_TRUE(key.ok()) << key.err().to_string();
  struct ::stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  // A hand-edited file without its last newline: the appended line starts on its own.
  const auto edited = write("edited.jsonl", "# no newline at the end");
  auto k2 = append_api_key(edited, {"acme"}, {"admin"}, "");
  ASSERT_TRUE(k2.ok()) << k2.err().to_string();
  auto set = api_key_set::load(edited);
  ASSERT_TRUE(set.ok()) << set.err().to_string();
  EXPECT_TRUE(set->authenticate("Bearer " + *k2).ok());
}

TEST_F(gateway_keys_test, append_api_key_refuses_bad_tenants_and_rights_and_writes_nothing) {
  const auto path = file("keys.jsonl");
  struct bad_case {
    std::vector<std::string> tenants, rights;
    std::string message;
  };
  for (const auto& c : std::vector<bad_case>{
           {{}, {"commands"}, "no tenant: give --tenant T (or '*' for all)"},
           {{"acme", "*"}, {"commands"}, "'*' (all tenants) stands alone, without other tenants"},
           {{"ac/me"}, {"commands"}, "bad tenant 'ac/me': a tenant is [A-Za-z0-9_-]{1,64} or '*'"},
           {{std::string(65, 'a')},
            {"commands"},
            "bad tenant '" + std::string(65, 'a') + "': a tenant is [A-Za-z0-9_-]{1,64} or '*'"},
           {{"acme"}, {}, "no rights: give commands, queries and/or admin"},
           {{"acme"}, {"commands", "write"}, "unknown right 'write' (rights: commands, queries, admin)"},
       }) {
    auto r = append_api_key(path, c.tenants, c.rights, "");
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.err().code, errc::invalid_config);
    EXPECT_EQ(r.err().message, c.message);
  }
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(gateway_keys_test, new_api_key_is_esk_and_43_base64url_characters_and_unique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto k = new_api_key();
    ASSERT_TRUE(k.ok()) << k.err().to_string();
    ASSERT_EQ(k->size(), 4U + 43U) << *k;
    EXPECT_EQ(k->substr(0, 4), "esk_");
    for (char c : k->substr(4))
      ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << *k;
    EXPECT_TRUE(seen.insert(*k).second) << "repeated key " << *k;
  }
}

TEST_F(gateway_keys_test, rights_have_the_contract_names) {
  for (auto r : {right::commands, right::queries, right::admin}) EXPECT_EQ(parse_right(to_string(r)), r);
  EXPECT_EQ(to_string(right::commands), "commands");
  EXPECT_EQ(to_string(right::queries), "queries");
  EXPECT_EQ(to_string(right::admin), "admin");
  EXPECT_FALSE(parse_right("Commands").has_value());
}

}  // namespace
}  // namespace esflow::gateway
