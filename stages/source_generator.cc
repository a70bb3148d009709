// source.generator: `count` messages from a body template, optionally paced.
// Concurrency: run() on the source thread.
#include "graph/pipeline_spec.h"
#include "stages/builtin.h"

#include <chrono>
#include <thread>

namespace esflow::stages {
namespace {

void replace_all(std::string& s, std::string_view what, const std::string& with) {
  for (auto pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + with.size()))
    s.replace(pos, what.size(), with);
}

class source_generator final : public graph::stage {
 public:
  source_generator(std::int64_t count, std::int64_t rate, std::int64_t keys, std::string body)
      : _count(count), _rate(rate), _keys(keys), _body(std::move(body)) {}

  void run(graph::source_output& out) override {
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < _count && !out.stopping(); ++i) {
      if (_rate > 0) {
        const auto due = start + std::chrono::microseconds(i * 1000000 / _rate);
        std::this_thread::sleep_until(due);
      }
      auto m = graph::make_message();
      m->body = _body;
      const auto k = _keys > 0 ? i % _keys : 0;
      replace_all(m->body, "{i}", std::to_string(i));
      replace_all(m->body, "{k}", std::to_string(k));
      if (_keys > 0) m->key = "k" + std::to_string(k);
      if (!out.put(std::move(m))) return;
    }
  }

 private:
  std::int64_t _count, _rate, _keys;
  std::string _body;
};

}  // namespace

graph::stage_descriptor source_generator_descriptor() {
  graph::stage_descriptor d;
  d.kind = "source.generator";
  d.description = "emits `count` messages from a template ({i} = index, {k} = key number), optionally paced";
  d.role = graph::stage_role::source;
  d.default_concurrency = graph::concurrency::serial();  // one thread reads the input in order
  d.params = {
      graph::int_param("count", 1000, "messages to emit", 0),
      graph::int_param("rate", 0, "messages per second (0 = as fast as admitted)", 0),
      graph::int_param("keys", 0, "distinct keys k0..k{keys-1} set as message.key (0 = none)", 0),
      graph::string_param("body", std::string(R"({"i":{i},"key":"k{k}"})"), "body template"),
  };
  d.make = [](const graph::stage_init& init) -> result<std::unique_ptr<graph::stage>> {
    const auto& p = init.spec.params;
    return std::unique_ptr<graph::stage>(
        new source_generator(p.integer("count"), p.integer("rate"), p.integer("keys"), p.str("body")));
  };
  return d;
}

}  // namespace esflow::stages
