#pragma once
// The ids a log line carries (tenant, correlation, trace, aggregate, saga,
// view): a thread-local stack of log_scope objects that the JSON log format
// reads (common/README.md, "Logging"). The text format ignores them.
//
// NOTE: a scope holds views, never copies: what it names must outlive it.
//       log_fields_copy keeps its own bytes for ids that may change or go
//       away while the scope is open (a message handed to another stage).
#include <array>
#include <cstddef>
#include <cstring>
#include <string_view>

namespace esflow {

struct log_fields {
  std::string_view tenant_id;
  std::string_view correlation_id;
  std::string_view trace_id;
  std::string_view aggregate_type;
  std::string_view aggregate_id;
  std::string_view saga;
  std::string_view view;

  bool empty() const noexcept {
    return tenant_id.empty() && correlation_id.empty() && trace_id.empty() && aggregate_type.empty() &&
           aggregate_id.empty() && saga.empty() && view.empty();
  }
};

// The innermost scope's fields on this thread (nullptr outside every scope).
const log_fields* current_log_fields() noexcept;

namespace detail {
const log_fields* exchange_log_fields(const log_fields* next) noexcept;
}

// Sets the fields for log lines written on this thread until it ends, then
// restores the enclosing scope's. A field left empty keeps the enclosing
// scope's value, so an inner scope (an aggregate) adds to an outer one
// (the command's tenant and correlation id). No allocation.
class log_scope {
 public:
  // replace: ignore the enclosing scope's ids (a message's own scope: a
  // stage body TBB runs nested in another must not borrow that message's ids).
  enum mode { inherit_outer, replace };
  explicit log_scope(const log_fields& fields, mode m = inherit_outer) noexcept : _fields(fields) {
    if (const auto* outer = current_log_fields(); outer && m == inherit_outer) inherit(*outer);
    _previous = detail::exchange_log_fields(&_fields);
  }
  ~log_scope() { detail::exchange_log_fields(_previous); }
  log_scope(const log_scope&) = delete;
  log_scope& operator=(const log_scope&) = delete;

  const log_fields& fields() const noexcept { return _fields; }

 private:
  void inherit(const log_fields& o) noexcept {
    auto keep = [](std::string_view& mine, std::string_view theirs) {
      if (mine.empty()) mine = theirs;
    };
    keep(_fields.tenant_id, o.tenant_id);
    keep(_fields.correlation_id, o.correlation_id);
    keep(_fields.trace_id, o.trace_id);
    keep(_fields.aggregate_type, o.aggregate_type);
    keep(_fields.aggregate_id, o.aggregate_id);
    keep(_fields.saga, o.saga);
    keep(_fields.view, o.view);
  }

  log_fields _fields;
  const log_fields* _previous = nullptr;
};

// Fields copied into fixed inline buffers (no allocation; an id longer than
// k_capacity is cut: validated correlation ids are at most 128 bytes).
class log_fields_copy {
 public:
  static constexpr std::size_t k_capacity = 128;

  explicit log_fields_copy(const log_fields& f) noexcept {
    std::size_t used = 0;
    auto copy = [&](std::string_view in, std::string_view& out) {
      if (in.empty()) return;
      const auto n = in.size() < k_capacity ? in.size() : k_capacity;
      if (used + n > _bytes.size()) return;
      std::memcpy(_bytes.data() + used, in.data(), n);
      out = std::string_view(_bytes.data() + used, n);
      used += n;
    };
    copy(f.tenant_id, _fields.tenant_id);
    copy(f.correlation_id, _fields.correlation_id);
    copy(f.trace_id, _fields.trace_id);
    copy(f.aggregate_type, _fields.aggregate_type);
    copy(f.aggregate_id, _fields.aggregate_id);
    copy(f.saga, _fields.saga);
    copy(f.view, _fields.view);
  }
  log_fields_copy(const log_fields_copy&) = delete;
  log_fields_copy& operator=(const log_fields_copy&) = delete;

  const log_fields& fields() const noexcept { return _fields; }

 private:
  std::array<char, 4 * k_capacity> _bytes;  // uninitialised: only the copied bytes are read
  log_fields _fields;
};

}  // namespace esflow
