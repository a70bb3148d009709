#pragma once
// An expected failure as a value: a docs/contract.md code, a human message and the
// context that says where it happened. Expected failures never throw: an
// exception escaping a flow-graph node cancels the whole graph.
#include "common/errc.h"

#include <source_location>
#include <string>
#include <utility>

namespace esflow {

struct error {
  errc code = errc::internal;
  // The wire code: to_string(code), or the program's own code for domain_rejection.
  std::string code_text;
  std::string message;
  // "tenant=acme aggregate=Account/acc-1 stage=decide at graph/builder.cc:42"
  std::string context;
  // tenant_not_hosted: the node placement puts the tenant on (docs/contract.md
  // "Gateway (the edge) and tenant placement"); empty otherwise.
  std::string node;

  static error make(errc c, std::string msg, std::string ctx = {},
                    std::source_location loc = std::source_location::current());
  static error domain(std::string program_code, std::string msg);
  // invalid_config whose message already names the file and line (a pipeline
  // file's), so no source location of ours is added.
  static error config(std::string msg);

  // "code: message (context)"
  std::string to_string() const;
};

}  // namespace esflow
