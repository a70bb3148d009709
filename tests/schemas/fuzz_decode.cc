// Fuzz target for the decoders (STYLE.md 16).
// With Clang it is a libFuzzer target (needs Clang >= 15 with libstdc++ 12:
// common/error.h uses std::source_location; Debian's clang 14 cannot build it):
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DESFLOW_MODULES=schemas
//     (add -DESFLOW_SANITIZE=address,undefined for ASan/UBSan)
//   ninja -C build-fuzz fuzz_schemas_decode && build-fuzz/tests/schemas/fuzz_schemas_decode
//   -max_total_time=60
// With GCC it links fuzz_driver.cc (seeded random mutations; ctest runs 20k).
// Properties: no decoder crashes or reads out of bounds on any input; an
// accepted command re-encodes to a body that decodes to the same fields, and
// its payload text is a substring of the input; any byte string survives
// encode -> decode as a JSON string when it is valid UTF-8.
#include "schemas/json_decode.h"
#include "schemas/json_encode.h"

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace esflow::schemas;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  if (auto r = decode_command(input); r.ok()) {
    const command& c = r->cmd;
    check(input.find(c.payload_json) != std::string_view::npos);
    command again = c;
    auto back = decode_command(encode_command(again));
    check(back.ok());
    check(back->cmd.aggregate_type == c.aggregate_type && back->cmd.payload_json == c.payload_json &&
          back->cmd.payload_type == c.payload_type && back->cmd.command_id == c.command_id &&
          back->cmd.aggregate_id == c.aggregate_id && back->cmd.tenant_id == c.tenant_id &&
          back->cmd.metadata_json == c.metadata_json);
  }
  esflow::ignore(decode_event(input));
  esflow::ignore(decode_commit(input));
  esflow::ignore(decode_command_result(input));
  esflow::ignore(decode_snapshot(input));

  // String escaping: arbitrary bytes as a message.
  command_result rejected;
  rejected.code = "x";
  rejected.message.assign(input);
  auto decoded = decode_command_result(encode_command_result(rejected));
  check(decoded.ok());
  if (simdjson::validate_utf8(input.data(), input.size())) check(decoded->message == input);
  return 0;
}
