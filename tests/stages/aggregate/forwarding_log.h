#pragma once
// An event log that forwards every call to another one: tests derive from it
// and override the calls they watch or delay. Hiding the inner log's type
// also makes the aggregate service treat it as remote (reader threads).
#include "storage/event_log.h"

#include <memory>

namespace esflow::aggregate::testing {

class forwarding_log : public storage::event_log {
 public:
  explicit forwarding_log(std::shared_ptr<storage::event_log> inner) : _inner(std::move(inner)) {}

  void append(storage::append_request r, append_callback done) override {
    _inner->append(std::move(r), std::move(done));
  }
  result<std::vector<schemas::event>> read(std::string_view t, std::string_view ty, std::string_view id,
                                           schemas::version_t after, std::size_t limit) override {
    return _inner->read(t, ty, id, after, limit);
  }
  result<storage::aggregate_page> read_page(std::string_view t, std::string_view ty, std::string_view id,
                                            schemas::version_t after, schemas::position_t pos,
                                            std::size_t limit) override {
    return _inner->read_page(t, ty, id, after, pos, limit);
  }
  result<schemas::version_t> current_version(std::string_view t, std::string_view ty,
                                             std::string_view id) override {
    return _inner->current_version(t, ty, id);
  }
  result<std::optional<storage::append_result>> find_command(std::string_view t,
                                                             std::string_view c) override {
    return _inner->find_command(t, c);
  }
  result<std::vector<storage::positioned_commit>> read_from(schemas::position_t after,
                                                            std::size_t max) override {
    return _inner->read_from(after, max);
  }
  result<schemas::position_t> last_position() override { return _inner->last_position(); }
  status close() override { return _inner->close(); }

 protected:
  storage::event_log& inner() { return *_inner; }

 private:
  std::shared_ptr<storage::event_log> _inner;
};

}  // namespace esflow::aggregate::testing
