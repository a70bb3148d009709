// Driver for fuzz_decode.cc when libFuzzer is not available (GCC builds):
//   fuzz_schemas_decode FILE...      replays the given inputs
//   fuzz_schemas_decode [-n N]       N rounds of random mutations of seed bodies
// Not coverage-guided, but it runs the same properties under the sanitizers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

const std::vector<std::string> k_seeds = {
    R"({"tenant_id":"tenant-2","command_id":"58bbe5b7-6f0e-4c1a-9d6b-0f8f1d2a3b4c","aggregate_type":"Account","aggregate_id":"acc-03290","payload":{"type":"deposit","amount":6}})",
    R"({"aggregate_type":"Account","payload":{"type":"open_account","initial_balance":0},"metadata":{"a":[1,2,{"b":null}]}})",
    R"({"tenant_id":"acme","event_id":"0192f1c4-7b2e-7cc3-8f00-1a2b3c4d5e6f","aggregate_type":"Account","aggregate_id":"a","version":6,"event_type":"deposited","payload":{"type":"deposited","amount":50},"command_id":"c","correlation_id":"x","trace_id":"t","timestamp":"2026-11-22T16:00:00.123Z"})",
    R"({"status":"accepted","aggregate_id":"a","version":6,"duplicate":false,"events":[{"event_id":"e","aggregate_type":"A","aggregate_id":"a","version":6,"event_type":"t","payload":{}}]})",
    R"({"status":"rejected","code":"insufficient_funds","message":"balance 10 < 100 \u00e9 \n","retryable":false})",
    R"({"aggregate_type":"A","aggregate_id":"a","version":100,"log_position":12345,"state":{"open":true},"created_at":"x"})",
};

const char k_tokens[][8] = {"{",    "}",  "[",     "]",        ",",    ":",    "\"", "\\", "\\u", "null",
                            "true", "-1", "1e999", "\"type\"", "\xC3", "\xFF", " ",  "\n", "0",   "\"\""};

std::string mutate(std::string s, std::mt19937_64& rng) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = s.empty() ? 0 : rng() % (s.size() + 1);
    switch (rng() % 5) {
      case 0:  // delete a range
        if (!s.empty() && pos < s.size()) s.erase(pos, 1 + rng() % 8);
        break;
      case 1:  // insert a JSON-ish token
        s.insert(pos, k_tokens[rng() % (sizeof(k_tokens) / sizeof(k_tokens[0]))]);
        break;
      case 2:  // flip a byte
        if (pos < s.size()) s[pos] = static_cast<char>(rng());
        break;
      case 3:  // truncate
        s.resize(pos);
        break;
      default:  // duplicate a slice
        if (pos < s.size()) s.insert(pos, s.substr(pos, 1 + rng() % 16));
    }
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  long rounds = 200000;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
      rounds = std::strtol(argv[++i], nullptr, 10);
    } else {
      files.emplace_back(argv[i]);
    }
  }
  auto run = [](const std::string& s) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  if (!files.empty()) {
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      run(ss.str());
    }
    return 0;
  }
  std::mt19937_64 rng(0x5eed);
  for (const auto& s : k_seeds) run(s);
  for (long r = 0; r < rounds; ++r) {
    std::string s = k_seeds[rng() % k_seeds.size()];
    const int generations = 1 + static_cast<int>(rng() % 3);
    for (int g = 0; g < generations; ++g) s = mutate(std::move(s), rng);
    run(s);
  }
  std::printf("fuzz_schemas_decode: %ld mutated inputs, no failure\n", rounds);
  return 0;
}
