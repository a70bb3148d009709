#pragma once
// `esflow dev`'s API key for the gateway it runs (docs/gateway.md "Dev
// mode"): without a key the gateway only denies, and a developer should not
// have to make one first. So dev keeps one key for every tenant and right in
// its data directory:
//
//   <data_dir>/dev-keys.jsonl   the key file (digests only, as every key file)
//   <data_dir>/dev-key          the key itself, 0600: `cat data/dev-key`
//
// made when the key file is missing, kept otherwise (a key added to it with
// `esflow keys add --file` stays valid). `esflow run` never does this: there a
// missing key file stops the gateway (stages/gateway/README.md "Control plane").
#include "common/result.h"

#include <string>

namespace esflow::cli {

struct dev_key {
  std::string keys_file;  // <data_dir>/dev-keys.jsonl
  std::string key_file;   // <data_dir>/dev-key
  bool created = false;   // made now (else both were there already)
};

// Creates the data directory if needed. Errors: internal (I/O), naming the path.
result<dev_key> ensure_dev_key(const std::string& data_dir);

}  // namespace esflow::cli
