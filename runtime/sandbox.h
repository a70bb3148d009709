#pragma once
// sandbox: one Lua 5.4 VM that runs decide/apply programs deterministically,
// with an instruction budget per call and a memory cap per VM.
//
// Thread model:
//   - A sandbox is NOT thread-safe. Own one per worker thread / lane and call it
//     from that thread only (a sandbox may move between threads between calls,
//     never during one).
//   - state_handle values belong to the sandbox that made them: use them only
//     with it, and destroy them before it (the sandbox asserts this in debug).
//   - Programs (runtime/program.h) are immutable and shared by all sandboxes;
//     each sandbox compiles a program once, on first use, and caches the compiled
//     functions by the program's compile_key().
//
// Errors (never exceptions):
//   - program_error: the program raised (message "path:line: ..."), ran out of
//     gas ("ran out of gas [in string.find] after N instructions": string
//     functions charge the same budget, runtime/lua_strings.h), ran out of memory ("out of
//     memory ..."), returned something malformed, or produced a value JSON cannot
//     hold (NaN, a function, a table with non-string keys, ...).
//   - domain_rejection: decide called reject(code, message); code_text = code.
//   - invalid_command: a payload handed in is not JSON or holds an integer
//     outside int64 (a command payload should be validated before it gets here).
// After any error the sandbox stays usable; a failed apply leaves the handle's
// state as it was, unless the program mutated the state table in place before failing.
//
// NOTE: decide must treat `state` as read-only. The runtime passes the cached
// table itself (no copy, that is the fast path); mutating it in decide changes
// the cached state without an event.
#include "common/result.h"
#include "runtime/program.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace esflow::runtime {

struct sandbox_options {
  // Lua VM instructions one call (decide, apply, initial_state, program load) may
  // run; string functions charge their steps to the same budget.
  std::uint64_t gas_per_call = 10'000'000;
  // Cap on all memory of the VM (compiled programs + cached states + call garbage).
  std::size_t memory_limit_bytes = std::size_t{64} << 20;
};

struct emitted_event {
  std::string event_type;    // == payload.type
  std::string payload_json;  // the whole event table, object keys sorted
};
using decision = std::vector<emitted_event>;

class sandbox;

// An aggregate state held as a Lua table inside one sandbox (a registry ref).
// Move-only; releases the table when destroyed.
// NOTE: must not outlive its sandbox.
class state_handle {
 public:
  state_handle() = default;
  ~state_handle();
  state_handle(state_handle&& other) noexcept;
  state_handle& operator=(state_handle&& other) noexcept;
  state_handle(const state_handle&) = delete;
  state_handle& operator=(const state_handle&) = delete;

  bool valid() const noexcept { return _owner != nullptr; }

 private:
  friend class sandbox;
  state_handle(sandbox* owner, int ref) noexcept : _owner(owner), _ref(ref) {}
  void reset() noexcept;

  sandbox* _owner = nullptr;
  int _ref = 0;
};

class sandbox {
 public:
  explicit sandbox(sandbox_options options = {});
  ~sandbox();
  sandbox(const sandbox&) = delete;
  sandbox& operator=(const sandbox&) = delete;

  const sandbox_options& options() const noexcept;

  // Compiles `p` into this VM now (otherwise the first call does): runs the
  // file's top level once and picks up decide / apply / initial_state.
  status preload(const program& p);

  // initial_state() of the program, or {} when it defines none.
  result<state_handle> initial_state(const program& p);
  // A state from its JSON snapshot (a JSON object).
  result<state_handle> state_from_json(std::string_view json);
  result<std::string> state_to_json(const state_handle& state);

  // state = apply(state, event), in place.
  status apply(const program& p, state_handle& state, std::string_view event_payload_json);

  // row = project(row, event) of a view program (docs/contract.md, "Projection
  // node"), in place: `row` invalid stands for nil (no row yet) in and for a
  // deleted row out. On error `row` is as it was.
  status project(const program& p, state_handle& row, std::string_view event_json);
  // A saga step (docs/contract.md "Runner node"): on_event(state, input) with
  // `state` null or invalid standing for nil (a new instance). The returned
  // table ({state, work, schedules, cancel, done}) as a handle; state_to_json
  // gives its JSON. The program may change `state` in place: callers pass a
  // state they do not keep.
  result<state_handle> on_event(const program& p, const state_handle* state, std::string_view input_json);
  bool defines_on_event(const program& p);
  // Whether the program defines project(row, event) (false when it fails to load).
  bool defines_project(const program& p);

  // events = decide(state, command). An empty decision means accepted, no events.
  result<decision> decide(const program& p, const state_handle& state, std::string_view command_payload_json);
  // The same, reusing the strings of `out` (the hot path: no allocation once warm).
  status decide_into(const program& p, const state_handle& state, std::string_view command_payload_json,
                     decision& out);
  // decide, then apply every emitted event to `state` in place, without
  // re-parsing their JSON. If decide or any apply fails, `state` is unchanged.
  status decide_and_apply(const program& p, state_handle& state, std::string_view command_payload_json,
                          decision& out);

  // Bytes the VM holds now (tracked by its allocator).
  std::size_t memory_used() const noexcept;
  // Number of program versions compiled into this VM.
  std::size_t compiled_programs() const noexcept;

  struct impl;  // public so the Lua C callbacks in sandbox.cc can reach it

 private:
  friend class state_handle;
  void release(int ref) noexcept;
  status run_decide(const program& p, int state_ref, std::string_view command_payload_json, decision& out,
                    bool apply);

  std::unique_ptr<impl> _impl;
};

}  // namespace esflow::runtime
