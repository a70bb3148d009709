#pragma once
// `esflow keys add`: a new gateway API key (stages/gateway/README.md, "The
// key file"). The key is printed once on stdout; the file keeps only its
// SHA-256 digest, so it cannot be shown again.
#include <iosfwd>
#include <string>
#include <vector>

namespace esflow::cli {

// The key file when --file is not given: $ESFLOW_KEYS_FILE, else ./keys.jsonl.
std::string default_keys_file();

// tenants: each [A-Za-z0-9_-]{1,64}, or '*' alone; rights: commands, queries,
// admin. Exit codes: 0 ok, 1 the file could not be written, 2 bad usage.
int keys_add_command(const std::string& file, const std::vector<std::string>& tenants,
                     const std::vector<std::string>& rights, const std::string& label, std::ostream& out,
                     std::ostream& err);

}  // namespace esflow::cli
