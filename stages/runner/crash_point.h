#pragma once
// Test hook for crash tests at precise boundaries (tests/stages/runner/runner_crash_test.cc).
// ESFLOW_TEST_CRASH_AT=<point>:<n> ends the process at once (_exit(137), as
// a SIGKILL would: no destructor, no flush, no RocksDB close) the n-th time
// (1 when ":<n>" is left out) the named point is reached. Compiled in always;
// without the variable a point costs a string check. Points:
//   saga.committed     the saga commit is stored; the input not acked, nothing dispatched
//   outbox.answered    a rejected command's answer is stored in its item; not published
//   outbox.dispatched  an item is dispatched (answer published; on the embedded
//                      streams the item deleted in the same write, on JetStream not yet)
//   effect.executed    an effect ran at its provider; its result not published nor stored
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

namespace esflow::runner {

namespace crash_detail {
struct armed_point {
  std::string name;  // empty: inert
  long at = 1;
  std::atomic<long> reached{0};
  armed_point() {
    const char* v = std::getenv("ESFLOW_TEST_CRASH_AT");
    if (v == nullptr || *v == '\0') return;
    std::string s(v);
    if (auto colon = s.rfind(':'); colon != std::string::npos) {
      at = std::max(1L, std::strtol(s.c_str() + colon + 1, nullptr, 10));
      s.resize(colon);
    }
    name = std::move(s);
  }
};
inline armed_point& armed() {
  static armed_point p;
  return p;
}
}  // namespace crash_detail

inline void crash_point(std::string_view point) {
  auto& a = crash_detail::armed();
  if (a.name.empty() || a.name != point) return;
  if (a.reached.fetch_add(1, std::memory_order_relaxed) + 1 == a.at) ::_exit(137);
}

}  // namespace esflow::runner
