#include "stages/ingest/aggregate_reads.h"

#include "schemas/json_encode.h"

#include <algorithm>
#include <charconv>

namespace esflow::stages {
namespace {

constexpr std::size_t k_default_limit = 100;
constexpr std::size_t k_max_limit = 1000;

// A strict decimal u64 ("" and anything else but digits is malformed).
std::optional<std::uint64_t> parse_u64(const std::string& text) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

result<std::string> read_aggregate_json(aggregate_reads& reads, const std::string& tenant,
                                        const std::string& type, const std::string& id, bool events,
                                        const std::optional<std::string>& after,
                                        const std::optional<std::string>& limit) {
  std::string body;
  if (!events) {
    auto st = reads.state(tenant, type, id);
    if (!st.ok()) return std::move(st).err();
    schemas::json_writer w(body);
    w.begin_object().key("aggregate_type").value(type).key("aggregate_id").value(id);
    w.key("version").value(st->version).key("state").raw(st->state_json).end_object();
    return body;
  }
  std::uint64_t from = 0;
  std::size_t count = k_default_limit;
  if (after) {
    auto v = parse_u64(*after);
    if (!v) return error::make(errc::invalid_command, "query parameter 'after' must be a version (u64)");
    from = *v;
  }
  if (limit) {
    auto v = parse_u64(*limit);
    if (!v || *v == 0)
      return error::make(errc::invalid_command, "query parameter 'limit' must be a positive integer");
    count = static_cast<std::size_t>(std::min<std::uint64_t>(*v, k_max_limit));
  }
  auto page = reads.events(tenant, type, id, from, count);
  if (!page.ok()) return std::move(page).err();
  body = R"({"events":[)";
  for (std::size_t i = 0; i < page->events.size(); ++i) {
    if (i) body += ',';
    schemas::append_event(body, page->events[i]);
  }
  body += R"(],"next_after":)";
  body += page->next_after ? std::to_string(*page->next_after) : std::string("null");
  body += '}';
  return body;
}

std::string aggregate_reads_key(const std::string& data_dir) { return "aggregate:" + data_dir; }

std::shared_ptr<aggregate_reads> find_aggregate_reads(esflow::service_registry& services,
                                                      const std::string& data_dir) {
  if (auto injected = services.find<aggregate_reads>()) return injected;
  return services.find<aggregate_reads>(aggregate_reads_key(data_dir));
}

}  // namespace esflow::stages
