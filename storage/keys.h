#pragma once
// Binary keys of the column families (storage/README.md "Column families and keys").
//
// Every string component is length-prefixed: one byte for lengths 0..254, or
// 0xFF followed by a big-endian u32 for longer ones. A component therefore
// ends where its prefix says, whatever bytes it holds: no choice of ids lets
// one tenant's (or aggregate's) keys equal, or start with, another's.
// Numbers are big-endian u64, so byte order equals numeric order and a
// range scan over versions or positions runs in numeric order.
//
// NOTE: keys are only compared within one column family; a family's keys all
// have the same component layout, so no type tag is needed.
#include "schemas/envelopes.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace esflow::storage::keys {

using schemas::position_t;
using schemas::version_t;

// Primitive encoders (append to out).
void put_str(std::string& out, std::string_view component);
void put_u64_be(std::string& out, std::uint64_t v);
// Decodes a big-endian u64 from the first 8 bytes (precondition: size >= 8).
std::uint64_t get_u64_be(std::string_view bytes) noexcept;
// Reads one length-prefixed component at pos, advancing pos; false if truncated.
bool get_str(std::string_view key, std::size_t& pos, std::string_view& component) noexcept;

// events: global position.
std::string position(position_t p);
// event_index / snapshots: the aggregate (tenant, type, id).
std::string aggregate(std::string_view tenant, std::string_view type, std::string_view id);
// event_index: aggregate + last version of a commit.
std::string aggregate_version(std::string_view tenant, std::string_view type, std::string_view id,
                              version_t v);
// dedupe: (tenant, command id). Sagas use (tenant, saga + ':' + event id) as the id.
std::string dedupe(std::string_view tenant, std::string_view command_id);
// checkpoints: (tenant, saga or projection name).
std::string checkpoint(std::string_view tenant, std::string_view consumer);
// quarantine: (source, position).
std::string quarantine(std::string_view source, std::uint64_t position);
// saga: (tenant, saga, correlation id).
std::string saga(std::string_view tenant, std::string_view saga, std::string_view correlation_id);
// outbox: (tenant, work kind, work id).
std::string outbox(std::string_view tenant, std::string_view kind, std::string_view work_id);
// schedules: (due time ms, tenant, saga, correlation id, name): a scan from the
// start meets the earliest due items first.
std::string schedule(std::uint64_t due_ms, std::string_view tenant, std::string_view saga,
                     std::string_view correlation_id, std::string_view name);
// readmodels: (tenant, view, "r", row key): a row (index entries: storage/readmodel_store.h).
std::string readmodel(std::string_view tenant, std::string_view view, std::string_view row_key);
// The prefix of every key that starts with these components.
std::string components(std::initializer_list<std::string_view> parts);
// All keys of a tenant in a family keyed by tenant first.
std::string tenant_prefix(std::string_view tenant);

// Smallest key greater than every key that starts with prefix ("" if none).
std::string prefix_successor(std::string_view prefix);

}  // namespace esflow::storage::keys
