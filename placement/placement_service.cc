#include "placement/placement_service.h"

#include "common/log.h"
#include "placement/placement_file.h"
#include "schemas/ids.h"

namespace esflow::placement {
namespace {
constexpr const char* k_module = "placement";
}  // namespace

std::string_view to_string(placement_source s) noexcept {
  switch (s) {
    case placement_source::kv:
      return "kv";
    case placement_source::file:
      return "file";
    case placement_source::none:
      return "none";
  }
  return "?";
}

node_registration placement_service::own_registration() const {
  return {_options.node_id, _options.kinds, _options.http, _options.grpc, schemas::now_timestamp()};
}

result<std::unique_ptr<placement_service>> placement_service::start(placement_options options) {
  if (!is_valid_placement_id(options.node_id))
    return error::make(errc::invalid_config, "node id '" + options.node_id + "' is not [A-Za-z0-9_-]{1,64}",
                       "placement=service");
  if (options.vnodes < 1 || options.vnodes > k_max_vnodes)
    return error::make(
        errc::invalid_config,
        "vnodes " + std::to_string(options.vnodes) + " is outside [1, " + std::to_string(k_max_vnodes) + "]",
        "placement=service");
  std::unique_ptr<placement_service> self(new placement_service(std::move(options)));
  const auto& o = self->_options;

  std::string why = "no NATS connection";
  if (o.nats != nullptr) {
    kv_options ko;
    ko.bucket = o.bucket;
    ko.replicas = o.replicas;
    ko.vnodes = o.vnodes;
    ko.ring_kind = o.ring_kind;
    ko.op_timeout = o.start_timeout;
    ko.watch_poll = o.watch_poll;
    ko.file = o.file;
    auto kv = kv_placement::open(*o.nats, ko);
    status st = kv.ok() ? kv.value()->register_node(self->own_registration()) : status(kv.err());
    if (st.ok()) st = kv.value()->start_watch();
    if (st.ok()) st = kv.value()->wait_initial(o.start_timeout);
    if (st.ok()) {
      self->_kv = std::move(kv).value();
      self->_source = placement_source::kv;
      ESFLOW_INFO(k_module, "placement from KV bucket {} ({} nodes, {} listed tenants)", o.bucket,
                  self->current()->nodes().size(), self->current()->tenants().size());
      return self;
    }
    why = st.err().to_string();
    // kv (if opened) stops its watcher as it goes out of scope here.
  }

  if (o.file.empty()) {
    ESFLOW_WARN(k_module, "KV bucket {} unreachable ({}) and no placement file: this node alone", o.bucket,
                why);
  } else {
    auto m = load_placement_file(o.file, o.vnodes, o.ring_kind);
    if (m.ok()) {
      ESFLOW_WARN(k_module,
                  "KV bucket {} unreachable ({}): using the placement file {} (the last known placement)",
                  o.bucket, why, o.file.string());
      self->_feed.publish(std::make_shared<const placement_map>(std::move(m).value()));
      self->_source = placement_source::file;
      return self;
    }
    if (m.err().code != errc::not_found) return std::move(m).err();
    ESFLOW_WARN(k_module, "KV bucket {} unreachable ({}) and no placement file {}: this node alone", o.bucket,
                why, o.file.string());
  }
  placement_map::node_table nodes;
  nodes.emplace(o.node_id, self->own_registration());
  auto alone = placement_map::make(std::move(nodes), {}, o.vnodes, o.ring_kind);
  if (!alone.ok()) return std::move(alone).err();
  self->_feed.publish(std::make_shared<const placement_map>(std::move(alone).value()));
  self->_source = placement_source::none;
  return self;
}

placement_service::~placement_service() { stop(); }

std::uint64_t placement_service::add_listener(map_listener fn) {
  return _kv ? _kv->add_listener(std::move(fn)) : _feed.add_listener(std::move(fn));
}

void placement_service::remove_listener(std::uint64_t id) {
  if (_kv) {
    _kv->remove_listener(id);
  } else {
    _feed.remove_listener(id);
  }
}

status placement_service::reload() {
  if (_source != placement_source::file) return {};
  auto m = load_placement_file(_options.file, _options.vnodes, _options.ring_kind);
  if (!m.ok()) return std::move(m).err();
  _feed.publish(std::make_shared<const placement_map>(std::move(m).value()));
  ESFLOW_INFO(k_module, "placement reloaded from {}", _options.file.string());
  return {};
}

void placement_service::stop() {
  if (_kv) _kv->stop();
}

}  // namespace esflow::placement
