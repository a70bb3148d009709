// decode_command vs the raw simdjson On-Demand ceiling on the same body, plus
// the encoders and id generators on the hot path.
#include "schemas/ids.h"
#include "schemas/json_decode.h"
#include "schemas/json_encode.h"

#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <string>

namespace {

using namespace esflow::schemas;

const std::string k_body =
    R"({"tenant_id":"tenant-2","command_id":"58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c","aggregate_type":"Account",)"
    R"("aggregate_id":"acc-03290","payload":{"type":"deposit","amount":6}})";

void bm_decode_command_copy(benchmark::State& state) {
  for (auto _ : state) {
    auto r = decode_command(k_body);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_body.size()));
}
BENCHMARK(bm_decode_command_copy);

void bm_decode_command_padded(benchmark::State& state) {
  std::string body = k_body;
  body.reserve(body.size() + simdjson::SIMDJSON_PADDING);
  for (auto _ : state) {
    auto r = decode_command(body, body.capacity() + 1);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_body.size()));
}
BENCHMARK(bm_decode_command_padded);

// Key bytes up to the closing quote (the body has no escaped keys).
std::string_view raw_key(simdjson::ondemand::field& f) {
  const char* begin = f.key().raw();
  const char* p = begin;
  while (*p != '"') ++p;
  return {begin, static_cast<std::size_t>(p - begin)};
}

// The ceiling: parse and visit the same fields (views only, no copies, no
// validation, no error messages), payload text via its start and end tokens.
template <bool raw_keys>
void bm_raw_ondemand(benchmark::State& state) {
  namespace od = simdjson::ondemand;
  simdjson::padded_string padded(k_body);
  od::parser parser;
  for (auto _ : state) {
    od::document doc = parser.iterate(padded);
    std::string_view tenant, command_id, type, id, payload_type, payload;
    for (auto field_result : doc.get_object()) {
      if (field_result.error()) break;
      od::field& field = field_result.value_unsafe();
      std::string_view key = raw_keys ? raw_key(field) : std::string_view(field.unescaped_key());
      od::value& v = field.value();
      if (key == "tenant_id") {
        tenant = v.get_string();
      } else if (key == "command_id") {
        command_id = v.get_string();
      } else if (key == "aggregate_type") {
        type = v.get_string();
      } else if (key == "aggregate_id") {
        id = v.get_string();
      } else if (key == "payload") {
        const char* begin = v.raw_json_token().data();
        for (auto pf_result : v.get_object()) {
          if (pf_result.error()) break;
          od::field& pf = pf_result.value_unsafe();
          std::string_view pkey = raw_keys ? raw_key(pf) : std::string_view(pf.unescaped_key());
          if (pkey == "type") payload_type = pf.value().get_string();
        }
        const char* end = doc.current_location();
        payload = std::string_view(begin, static_cast<std::size_t>(end - begin));
      }
    }
    benchmark::DoNotOptimize(tenant);
    benchmark::DoNotOptimize(command_id);
    benchmark::DoNotOptimize(type);
    benchmark::DoNotOptimize(id);
    benchmark::DoNotOptimize(payload_type);
    benchmark::DoNotOptimize(payload);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_body.size()));
}
BENCHMARK(bm_raw_ondemand<false>)->Name("bm_raw_ondemand_unescaped_keys");
BENCHMARK(bm_raw_ondemand<true>)->Name("bm_raw_ondemand_raw_keys");

// What materialising the owned schemas::command costs by itself: the six
// string copies (two of them heap allocations) and the result<> wrapper.
void bm_materialize_command_only(benchmark::State& state) {
  const std::string_view tenant = "tenant-2", command_id = "58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c",
                         type = "Account", id = "acc-03290", payload_type = "deposit",
                         payload = R"({"type":"deposit","amount":6})";
  for (auto _ : state) {
    esflow::result<command_fields> r{command_fields{}};
    command& c = r.value().cmd;
    c.tenant_id.assign(tenant);
    c.command_id.assign(command_id);
    c.aggregate_type.assign(type);
    c.aggregate_id.assign(id);
    c.payload_type.assign(payload_type);
    c.payload_json.assign(payload);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_materialize_command_only);

event sample_event() {
  event e;
  e.tenant_id = "tenant-2";
  e.event_id = new_uuid_v7();
  e.aggregate_type = "Account";
  e.aggregate_id = "acc-03290";
  e.version = 42;
  e.event_type = "deposited";
  e.payload_json = R"({"type":"deposited","amount":6})";
  e.command_id = "58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c";
  e.correlation_id = new_uuid_v7();
  e.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  e.timestamp = now_timestamp();
  return e;
}

void bm_encode_command_result(benchmark::State& state) {
  command_result r;
  r.accepted = true;
  r.aggregate_id = "acc-03290";
  r.version = 42;
  r.events.push_back(sample_event());
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_command_result(out, r);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(bm_encode_command_result);

void bm_decode_commit(benchmark::State& state) {
  commit c;
  c.tenant_id = "tenant-2";
  c.aggregate_type = "Account";
  c.aggregate_id = "acc-03290";
  c.command_id = "58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c";
  c.first_version = 42;
  c.events.push_back(sample_event());
  const std::string json = encode_commit(c);
  for (auto _ : state) {
    auto r = decode_commit(json);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(bm_decode_commit);

void bm_new_uuid_v7(benchmark::State& state) {
  char buf[36];
  for (auto _ : state) {
    new_uuid_v7(buf);
    benchmark::DoNotOptimize(buf);
  }
}
BENCHMARK(bm_new_uuid_v7);

void bm_make_trace_context_fresh(benchmark::State& state) {
  for (auto _ : state) {
    auto ctx = make_trace_context("", "");
    benchmark::DoNotOptimize(ctx);
  }
}
BENCHMARK(bm_make_trace_context_fresh);

void bm_now_timestamp(benchmark::State& state) {
  for (auto _ : state) {
    auto ts = now_timestamp();
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK(bm_now_timestamp);

}  // namespace

BENCHMARK_MAIN();
