#pragma once
// Helpers shared by the runtime tests.
#include "runtime/program.h"
#include "runtime/sandbox.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace esflow::runtime::testing {

inline std::string programs_dir() { return std::string(ESFLOW_SOURCE_DIR) + "/pipelines/programs"; }

inline program_ptr make_program(std::string source, std::string path = "/programs/test.lua") {
  return std::make_shared<const program>("test", std::move(path), std::move(source));
}

// A program whose decide emits one event {type="r", v=<expr>}.
inline program_ptr probe(const std::string& expr) {
  return make_program("function decide(state, command) return {{type = 'r', v = " + expr +
                      "}} end\nfunction apply(state, event) return state end\n");
}

// Runs decide of `p` on {} with `command` and returns the single payload (or the error text).
inline std::string decide_one(sandbox& sb, const program& p, std::string_view command = R"({"type":"x"})") {
  auto state = sb.initial_state(p);
  if (!state) return "ERROR " + state.err().to_string();
  auto d = sb.decide(p, *state, command);
  if (!d) return "ERROR " + d.err().to_string();
  if (d->size() != 1) return "ERROR events=" + std::to_string(d->size());
  return (*d)[0].payload_json;
}

}  // namespace esflow::runtime::testing
