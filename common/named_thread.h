#pragma once
// A backend's own thread (a commit or writer loop) with a name for top and
// debuggers, and the thread boundary: nothing may escape it. A backend
// whose thread is gone cannot answer its callers; the process stops with
// the reason (a restart recovers from what is stored) rather than leave
// them waiting.
#include "common/result.h"

#include <functional>
#include <string>
#include <string_view>
#include <thread>

namespace esflow {

// `name`: at most 15 characters (pthread limit); `module`: the log module.
std::thread start_named_thread(std::string name, std::string module, std::function<void()> body);

// Joins t if joinable; internal error (naming `from`, e.g. "a publish
// completion") when called on t itself, which would deadlock.
status join_named_thread(std::thread& t, std::string_view from);

}  // namespace esflow
