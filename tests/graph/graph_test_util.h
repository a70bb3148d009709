#pragma once
// Shared fixture pieces of the graph suites: a per-test temp dir, a registry
// of the builtin kinds plus test-only kinds, and a recorder the test kinds
// reach through the service registry.
#include "common/service_registry.h"
#include "graph/json_field.h"
#include "graph/node.h"
#include "graph/pipeline_loader.h"
#include "graph/stage_descriptor.h"
#include "stages/builtin.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace esflow::graph::testing {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class temp_dir {
 public:
  temp_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "test";
    for (auto& c : name)
      if (c == '/') c = '_';
    _path = fs::temp_directory_path() / ("esflow-graph-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(_path);
    fs::create_directories(_path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(_path, ec);
  }
  const fs::path& path() const { return _path; }
  std::string file(const std::string& name) const { return (_path / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = _path / name;
    std::ofstream out(p, std::ios::trunc);
    out << text;
    return p.string();
  }

 private:
  fs::path _path;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// What the test kinds saw, shared with the test through service_registry.
struct recorder {
  std::mutex mu;
  std::map<std::string, std::vector<std::int64_t>> by_key;  // key -> body field "i" in processing order
  std::atomic<std::int64_t> count{0};
  std::atomic<int> running{0}, max_running{0};

  void record(const std::string& key, std::int64_t i) {
    std::lock_guard lock(mu);
    by_key[key].push_back(i);
  }
};

inline std::int64_t field_i(const message& m) {
  auto v = json_field(m.body, "i");
  return v ? std::stoll(*v) : -1;
}

// test.record: records (message.key, body.i) then passes the message on.
class record_stage final : public stage {
 public:
  explicit record_stage(std::shared_ptr<recorder> r) : _r(std::move(r)) {}
  void process(message_ptr m, const emitter& out) override {
    const int now = ++_r->running;
    for (int seen = _r->max_running.load();
         now > seen && !_r->max_running.compare_exchange_weak(seen, now);) {
    }
    _r->record(m->key, field_i(*m));
    ++_r->count;
    --_r->running;
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<recorder> _r;
};

// test.count: a sink that counts what reaches it.
class count_stage final : public stage {
 public:
  explicit count_stage(std::shared_ptr<recorder> r) : _r(std::move(r)) {}
  void process(message_ptr m, const emitter&) override {
    _r->record(m->key, field_i(*m));
    ++_r->count;
  }

 private:
  std::shared_ptr<recorder> _r;
};

// test.throw: throws from process() for every body whose "i" is a multiple of `every`.
class throw_stage final : public stage {
 public:
  explicit throw_stage(std::int64_t every) : _every(every) {}
  void process(message_ptr m, const emitter& out) override {
    if (field_i(*m) % _every == 0)
      throw std::runtime_error("test.throw: refusing i=" + std::to_string(field_i(*m)));
    out.emit(std::move(m));
  }

 private:
  std::int64_t _every;
};

inline result<std::shared_ptr<recorder>> find_recorder(const stage_init& init) {
  auto r = init.services.find<recorder>();
  if (!r) return error::make(errc::invalid_config, "test stage needs a recorder in the service registry");
  return r;
}

// The builtin kinds plus the test-only ones.
inline kind_registry test_registry() {
  kind_registry reg;
  stages::register_builtin_stages(reg);
  {
    stage_descriptor d;
    d.kind = "test.record";
    d.description = "records (key, i) as it processes, then passes the message on";
    d.make = [](const stage_init& init) -> result<std::unique_ptr<stage>> {
      auto r = find_recorder(init);
      if (!r.ok()) return std::move(r).err();
      return std::unique_ptr<stage>(new record_stage(r.value()));
    };
    EXPECT_TRUE(reg.add(std::move(d)).ok());
  }
  {
    stage_descriptor d;
    d.kind = "test.count";
    d.description = "counts what reaches it";
    d.role = stage_role::sink;
    d.default_concurrency = concurrency::serial();
    d.make = [](const stage_init& init) -> result<std::unique_ptr<stage>> {
      auto r = find_recorder(init);
      if (!r.ok()) return std::move(r).err();
      return std::unique_ptr<stage>(new count_stage(r.value()));
    };
    EXPECT_TRUE(reg.add(std::move(d)).ok());
  }
  {
    stage_descriptor d;
    d.kind = "test.throw";
    d.description = "throws for every i that is a multiple of `every`";
    d.params = {int_param("every", 10, "throw when i % every == 0", 1)};
    d.make = [](const stage_init& init) -> result<std::unique_ptr<stage>> {
      return std::unique_ptr<stage>(new throw_stage(init.spec.params.integer("every")));
    };
    EXPECT_TRUE(reg.add(std::move(d)).ok());
  }
  {
    stage_descriptor d;
    d.kind = "test.sized";
    d.description = "a transform with a size parameter (validation tests)";
    d.params = {size_param("buffer", 65536, "a size")};
    d.make = [](const stage_init&) -> result<std::unique_ptr<stage>> {
      return std::unique_ptr<stage>(new stage());
    };
    EXPECT_TRUE(reg.add(std::move(d)).ok());
  }
  return reg;
}

inline std::chrono::steady_clock::time_point deadline_in(std::chrono::milliseconds ms) {
  return std::chrono::steady_clock::now() + ms;
}

// Loads a pipeline text written to `dir`/`name`; fails the test on a load error.
inline pipeline_spec load_ok(const temp_dir& dir, const std::string& name, const std::string& yaml,
                             const kind_registry& reg) {
  const auto path = dir.write(name, yaml);
  auto spec = load_pipeline_file(path, reg);
  if (!spec.ok()) {
    ADD_FAILURE() << "loading " << path << " failed:\n" << spec.err().message;
    return {};
  }
  return std::move(spec).value();
}

}  // namespace esflow::graph::testing
