// The projection node kind: events -> read models; queries -> rows. Owns the
// `views:` section (validated at load time with file:line: a missing
// program, a program without project(), an unknown key stop `esflow
// validate`); its messages start as a projection_context; its service is
// the pipeline's projection_service, which also serves the view queries and
// /admin/views on the node's HTTP server, and QueryService on its gRPC server.
#include "common/service_registry.h"
#include "stages/projection/grpc_query.h"
#include "stages/projection/http_views.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/stages.h"

#include <stdexcept>

namespace esflow::projection {

graph::node_kind_descriptor projection_kind_descriptor() {
  graph::node_kind_descriptor d;
  d.name = "projection";
  d.description = "events -> read models: views folded by Lua programs, secondary indexes, filter queries";
  d.sections = {"views"};
  d.check_section = [](const std::string&, const YAML::Node& section, const std::string& file,
                       const std::string& base_dir) {
    runtime::program_cache programs;
    auto parsed = parse_views(section, file, base_dir, programs);
    if (parsed.ok()) return std::vector<std::string>();
    return graph::problem_lines(parsed.err().message);
  };
  d.make_context = [] { return std::make_shared<projection_context>(); };
  d.make_service = [](const graph::node_kind_init& init) -> result<std::shared_ptr<void>> {
    auto service = projection_service::for_pipeline(init);
    if (!service.ok()) return std::move(service).err();
    if (auto st = serve_views(init.services, service.value()); !st.ok()) return std::move(st).err();
    if (auto st = serve_grpc_query(init.services); !st.ok()) return std::move(st).err();
    return std::shared_ptr<void>(std::move(service).value());
  };
  return d;
}

}  // namespace esflow::projection

namespace esflow::stages {

void register_projection_stages(graph::kind_registry& registry) {
  using namespace esflow::projection;
  for (auto make :
       {follow_descriptor, decode_descriptor, project_descriptor, store_descriptor, notify_descriptor}) {
    auto added = registry.add(make());
    if (!added.ok()) throw std::logic_error(added.err().to_string());
  }
  if (auto added = registry.add(projection_kind_descriptor()); !added.ok())
    throw std::logic_error(added.err().to_string());
}

}  // namespace esflow::stages
