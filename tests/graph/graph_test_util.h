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
#include <set>
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
  std::atomic<std::int64_t> inside_emit{0};  // test.inline calls made inside test.source's put()
  std::set<std::thread::id> threads;         // the threads test.inline ran on (under mu)

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

// True on test.source's thread while its put() runs: a stage seeing it runs
// inside the emit, on the source's own thread.
inline thread_local bool t_in_test_source_put = false;

// test.source: `count` messages {"i": n} put one by one from the source thread.
class counting_source final : public stage {
 public:
  explicit counting_source(std::int64_t count) : _count(count) {}
  void run(source_output& out) override {
    for (std::int64_t i = 0; i < _count; ++i) {
      auto m = make_message();
      m->body = "{\"i\":" + std::to_string(i) + "}";
      t_in_test_source_put = true;
      const bool admitted = out.put(std::move(m));
      t_in_test_source_put = false;
      if (!admitted) return;
    }
  }

 private:
  std::int64_t _count;
};

// test.inline (runs_inline): notes where it runs, then passes the message on.
class inline_stage final : public stage {
 public:
  explicit inline_stage(std::shared_ptr<recorder> r) : _r(std::move(r)) {}
  void process(message_ptr m, const emitter& out) override {
    if (t_in_test_source_put) ++_r->inside_emit;
    {
      std::lock_guard lock(_r->mu);
      _r->threads.insert(std::this_thread::get_id());
    }
    ++_r->count;
    out.emit(std::move(m));
  }

 private:
  std::shared_ptr<recorder> _r;
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
    d.kind = "test.source";
    d.description = "`count` messages {\"i\": n}, put one by one";
    d.role = stage_role::source;
    d.output_ports = {"out"};
    d.params = {int_param("count", 100, "messages to put", 0)};
    d.make = [](const stage_init& init) -> result<std::unique_ptr<stage>> {
      return std::unique_ptr<stage>(new counting_source(init.spec.params.integer("count")));
    };
    EXPECT_TRUE(reg.add(std::move(d)).ok());
  }
  {
    stage_descriptor d;
    d.kind = "test.inline";
    d.description = "runs inline: notes whether it ran on a TBB worker and on which thread";
    d.runs_inline = true;
    d.make = [](const stage_init& init) -> result<std::unique_ptr<stage>> {
      auto r = find_recorder(init);
      if (!r.ok()) return std::move(r).err();
      return std::unique_ptr<stage>(new inline_stage(r.value()));
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
