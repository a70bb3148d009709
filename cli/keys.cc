#include "cli/keys.h"

#include "cli/app.h"
#include "common/sha256.h"
#include "stages/gateway/api_keys.h"

#include <cstdlib>
#include <ostream>

namespace esflow::cli {

std::string default_keys_file() {
  const char* env = std::getenv("ESFLOW_KEYS_FILE");
  return env != nullptr && *env != '\0' ? env : "./keys.jsonl";
}

int keys_add_command(const std::string& file, const std::vector<std::string>& tenants,
                     const std::vector<std::string>& rights, const std::string& label, std::ostream& out,
                     std::ostream& err) {
  auto key = gateway::append_api_key(file, tenants, rights, label);
  if (!key) {
    err << "esflow keys add: " << key.err().message << "\n";
    return key.err().code == errc::invalid_config ? k_usage : k_failure;
  }
  // stdout carries the key alone, so `KEY=$(esflow keys add ...)` captures it.
  out << *key << "\n";
  err << "esflow keys add: only the key's SHA-256 digest (" << sha256_digest::of(*key).to_hex()
      << ") is stored, in " << file << "; the key above is not shown again\n";
  return k_ok;
}

}  // namespace esflow::cli
