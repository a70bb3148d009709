#pragma once
// `esflow replay --saga NAME --tenant T --from POSITION [--confirm]`: runs a
// tenant's trigger events of a saga after a log position through the saga
// again (POST /admin/sagas/<saga>/replay on the runner node; docs/runner.md
// "Reads and operations"). Without --confirm: a dry run (what would run).
#include <cstdint>
#include <iosfwd>
#include <string>

namespace esflow::cli {

// Exit codes: 0 ok, 1 the node failed or refused, 2 bad usage.
int replay_command(const std::string& url, const std::string& saga, const std::string& tenant,
                   std::uint64_t from, bool confirm, std::ostream& out, std::ostream& err);

}  // namespace esflow::cli
