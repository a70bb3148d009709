// A projection killed at random moments (SIGKILL of a real `esflow run`
// child serving the aggregate and projection pipelines while commands
// arrive) and started again on the same data directory resumes from its
// checkpoint: in the end every row equals the fold of its aggregate's events
// (the aggregate's state for `accounts`, the deposits counted from the
// events for `account_activity`), on both event-log backends.
#include "tests/stages/projection/projection_node.h"

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <mutex>
#include <random>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

namespace esflow::projection_test {
namespace {

class child_node {
 public:
  child_node(const std::string& data_dir, const std::string& nats_url) {
    _port = nats::testing::nats_server_fixture::free_port();
    const std::string bin = std::string(ESFLOW_BINARY_DIR) + "/esflow";
    std::vector<std::string> args = {
        bin,
        "run",
        pipeline(nats_url.empty() ? "aggregate.yaml" : "aggregate-jetstream.yaml"),
        pipeline("projection.yaml"),
        "--data-dir",
        data_dir,
        "--http",
        "127.0.0.1:" + std::to_string(_port)};
    if (!nats_url.empty()) {
      args.push_back("--nats");
      args.push_back(nats_url);
    }
    _pid = ::fork();
    if (_pid == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      const int null_fd = ::open("/dev/null", O_WRONLY);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
  }
  ~child_node() { kill(); }

  bool ready(std::chrono::seconds within) {
    httplib::Client c("127.0.0.1", _port);
    c.set_connection_timeout(0, 200000);
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto r = c.Get("/ready"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  void kill() {
    if (_pid <= 0) return;
    ::kill(_pid, SIGKILL);
    int status = 0;
    ::waitpid(_pid, &status, 0);
    _pid = -1;
  }
  int port() const { return _port; }

 private:
  pid_t _pid = -1;
  int _port = 0;
};

class projection_restart : public ::testing::TestWithParam<backend> {};

TEST_P(projection_restart, sigkill_at_random_points_then_every_row_equals_the_fold_of_its_events) {
  http_test::temp_dir dir;
  const auto data_dir = (dir.path() / "data").string();
  std::unique_ptr<nats::testing::nats_server_fixture> nats;
  if (GetParam() == backend::jetstream) {
    nats = std::make_unique<nats::testing::nats_server_fixture>();
    ASSERT_TRUE(nats->start());
  }
  std::mt19937_64 rng(GetParam() == backend::embedded ? 7 : 11);
  constexpr int k_accounts = 20;
  std::set<std::string> opened;
  for (int round = 0; round < 3; ++round) {
    child_node child(data_dir, nats ? nats->url() : std::string());
    ASSERT_TRUE(child.ready(std::chrono::seconds(20))) << "round " << round;
    // Traffic from another thread; the kill lands at a random moment of it.
    std::atomic<bool> stop{false};
    std::mutex mu;
    const auto seed = rng();
    std::thread traffic([&, seed] {
      httplib::Client c("127.0.0.1", child.port());
      c.set_read_timeout(5, 0);
      std::mt19937_64 local(seed);
      for (int i = 0; i < 5000 && !stop; ++i) {
        const auto id = "acc-" + std::to_string(local() % k_accounts);
        bool known;
        {
          std::lock_guard lock(mu);
          known = opened.count(id) != 0;
        }
        json payload = known ? deposit(static_cast<std::int64_t>(1 + local() % 9)) : open_account(1);
        json body = {{"aggregate_type", "Account"}, {"aggregate_id", id}, {"payload", payload}};
        auto r = c.Post("/v1/commands", {{"x-tenant-id", "acme"}}, body.dump(), "application/json");
        if (!r) break;  // killed
        if (r->status == 200) {
          std::lock_guard lock(mu);
          opened.insert(id);
        }
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + static_cast<int>(rng() % 200)));
    child.kill();  // mid-flight: the projection may be anywhere between follow and store
    stop = true;
    traffic.join();
  }
  projection_node node(GetParam() == backend::embedded ? backend::embedded : backend::jetstream, data_dir,
                       nats ? nats->url() : std::string());
  // Everything the log holds is processed, then the rows are compared.
  auto head = node.client().Get("/admin/views");
  ASSERT_TRUE(head);
  std::uint64_t last = 0;
  for (const auto& id : opened) {
    auto st = node.client().Get("/v1/aggregates/Account/" + id, {{"x-tenant-id", "acme"}});
    ASSERT_TRUE(st && st->status == 200) << id;
  }
  auto last_cmd = node.command("acme", "acc-final", open_account(0));
  last = last_cmd.value("position", std::uint64_t{0});
  ASSERT_GT(last, 0U);
  node.wait_for_position(last);
  opened.insert("acc-final");
  // A command committed just before a kill never got its answer: the log,
  // not the client's record, says which accounts exist.
  for (int i = 0; i < k_accounts; ++i) {
    const auto id = "acc-" + std::to_string(i);
    auto st = node.client().Get("/v1/aggregates/Account/" + id, {{"x-tenant-id", "acme"}});
    if (st && st->status == 200) opened.insert(id);
  }
  auto rows = node.all_rows("acme", "accounts", {});
  ASSERT_EQ(rows.size(), opened.size());
  for (const auto& r : rows) {
    const auto id = r["key"].get<std::string>();
    auto st =
        http_test::json_of(node.client().Get("/v1/aggregates/Account/" + id, {{"x-tenant-id", "acme"}}));
    EXPECT_EQ(r["row"], st["state"]) << id;
    EXPECT_EQ(r["version"], st["version"]) << id;
    auto events = http_test::json_of(
        node.client().Get("/v1/aggregates/Account/" + id + "/events?limit=1000", {{"x-tenant-id", "acme"}}));
    int deposits = 0;
    for (const auto& e : events["events"]) deposits += e["event_type"] == "deposited" ? 1 : 0;
    auto act = node.query_ok("acme", "account_activity", {{"filter", "key = \"" + id + "\""}});
    ASSERT_EQ(act["rows"].size(), 1U) << id;
    EXPECT_EQ(act["rows"][0]["row"]["deposits"], deposits) << id;
    EXPECT_EQ(act["rows"][0]["version"], st["version"]) << id;
  }
}

INSTANTIATE_TEST_SUITE_P(backends, projection_restart,
                         ::testing::Values(backend::embedded, backend::jetstream), [](const auto& i) {
                           return i.param == backend::embedded ? "embedded" : "jetstream";
                         });

}  // namespace
}  // namespace esflow::projection_test
