#pragma once
// The stage kinds a binary knows. Filled from one explicit list
// (stages/stage_list.cc); lookups answer with errors, never throw.
#include "common/result.h"
#include "graph/stage_descriptor.h"

#include <map>
#include <string>
#include <vector>

namespace esflow::graph {

class stage_registry {
 public:
  // A second descriptor with the same kind is a programming error: returns it.
  status add(stage_descriptor d);
  // invalid_config "unknown kind 'x' (did you mean 'y'?)".
  result<const stage_descriptor*> find(const std::string& kind) const;
  std::vector<const stage_descriptor*> all() const;  // sorted by kind

 private:
  std::map<std::string, stage_descriptor> _kinds;
};

}  // namespace esflow::graph
