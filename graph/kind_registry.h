#pragma once
// The kinds a binary knows: stage kinds, node kinds and the settings groups
// of `settings:`. Filled from one explicit list (stages/stage_list.cc);
// lookups answer with errors, never throw.
#include "common/result.h"
#include "graph/node_kind_descriptor.h"
#include "graph/stage_descriptor.h"

#include <map>
#include <string>
#include <vector>

namespace esflow::graph {

class kind_registry {
 public:
  kind_registry();

  // A second descriptor with the same kind is a programming error: returns it.
  status add(stage_descriptor d);
  // A node kind; its sections and settings must not clash with another's.
  status add(node_kind_descriptor d);
  // Settings keys owned by a layer other than a node kind (e.g. "node":
  // data_dir, event_log...). The engine's own group is registered by the constructor.
  status add_settings(const std::string& owner, const std::vector<param_spec>& settings);

  // invalid_config "unknown kind 'x' (did you mean 'y'?)".
  result<const stage_descriptor*> find(const std::string& kind) const;
  std::vector<const stage_descriptor*> all() const;  // sorted by kind
  const node_kind_descriptor* find_node_kind(const std::string& name) const;
  // The node kind owning a top-level section, or nullptr.
  const node_kind_descriptor* section_owner(const std::string& section) const;
  std::vector<const node_kind_descriptor*> node_kinds() const;  // sorted by name
  // Every settings key (engine, groups, node kinds), in registration order.
  const std::vector<param_spec>& settings() const { return _settings; }
  // Who declared a settings key ("engine", "node", a node kind's name).
  std::string settings_owner(const std::string& key) const;

  // The context of pipelines whose node kinds name none (the shared ingest
  // context of stages/); null leaves such messages without a context.
  void set_default_context(std::function<std::shared_ptr<message_context>()> make) {
    _default_context = std::move(make);
  }
  const std::function<std::shared_ptr<message_context>()>& default_context() const {
    return _default_context;
  }

 private:
  status add_settings_checked(const std::string& owner, const std::vector<param_spec>& settings);

  std::map<std::string, stage_descriptor> _kinds;
  std::map<std::string, node_kind_descriptor> _node_kinds;
  std::vector<param_spec> _settings;
  std::map<std::string, std::string> _settings_owner;
  std::function<std::shared_ptr<message_context>()> _default_context;
};

}  // namespace esflow::graph
