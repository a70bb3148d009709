#include "transport/nats/stream_policy.h"

#include "common/log.h"
#include "transport/nats/nats_connection.h"
#include "transport/nats/subjects.h"

namespace esflow::nats {
namespace {

std::string_view retention_name(jsRetentionPolicy r) {
  switch (r) {
    case js_LimitsPolicy:
      return "limits";
    case js_InterestPolicy:
      return "interest";
    case js_WorkQueuePolicy:
      return "workqueue";
  }
  return "?";
}

std::string_view storage_name(jsStorageType s) { return s == js_FileStorage ? "file" : "memory"; }

error mismatch(const stream_spec& spec, std::string field, std::string detail) {
  return error::make(errc::invalid_config,
                     "stream " + spec.name + ": field '" + field + "' " + detail +
                         " (esflow never changes an existing stream; update it explicitly)",
                     "stream=" + spec.name + " field=" + field);
}

status validate(const stream_spec& spec, const jsStreamConfig& have) {
  for (const auto& want : spec.subjects) {
    bool covered = false;
    for (int i = 0; i < have.SubjectsLen && !covered; ++i) {
      covered = subject_covers(have.Subjects[i], want);
    }
    if (!covered) return mismatch(spec, "subjects", "lacks required subject '" + want + "'");
  }
  const auto want_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.duplicate_window).count();
  if (have.Duplicates < want_ns) {
    return mismatch(spec, "duplicate_window",
                    "is " + std::to_string(have.Duplicates / 1000000) +
                        " ms, needs >= " + std::to_string(spec.duplicate_window.count()) + " ms");
  }
  if (have.Storage != spec.storage) {
    return mismatch(spec, "storage",
                    "is " + std::string(storage_name(have.Storage)) + ", needs " +
                        std::string(storage_name(spec.storage)));
  }
  if (have.Retention != spec.retention) {
    return mismatch(spec, "retention",
                    "is " + std::string(retention_name(have.Retention)) + ", needs " +
                        std::string(retention_name(spec.retention)));
  }
  if (spec.allow_direct && !have.AllowDirect) return mismatch(spec, "allow_direct", "is false, needs true");
  if (have.Replicas != spec.replicas) {
    ESFLOW_WARN("nats", "stream {} has {} replicas, configured {} (left as is)", spec.name, have.Replicas,
                spec.replicas);
  }
  return {};
}

stream_spec base(std::string name, std::vector<std::string> subjects, const streams_config& c) {
  stream_spec s;
  s.name = std::move(name);
  s.subjects = std::move(subjects);
  s.duplicate_window = std::max<std::chrono::milliseconds>(c.duplicate_window, std::chrono::minutes(2));
  s.replicas = c.replicas < 1 ? 1 : c.replicas;
  return s;
}

}  // namespace

stream_spec aggregate_events_spec(const streams_config& c) {
  auto s = base("AGGREGATE_EVENTS", {std::string(aggregate_filter)}, c);
  s.allow_direct = true;
  return s;
}

stream_spec workflow_commands_spec(const streams_config& c) {
  auto s = base("WORKFLOW_COMMANDS", {std::string(effect_filter)}, c);
  s.retention = js_WorkQueuePolicy;
  return s;
}

stream_spec workflow_events_spec(const streams_config& c) {
  return base(
      "WORKFLOW_EVENTS",
      {std::string(effect_result_filter), std::string(reminder_filter), std::string(command_result_filter)},
      c);
}

result<stream_outcome> ensure_stream(jsCtx* js, const stream_spec& spec) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  auto s = js_GetStreamInfo(&info, js, spec.name.c_str(), nullptr, &code);
  if (s == NATS_OK && info != nullptr) {
    auto st = validate(spec, *info->Config);
    jsStreamInfo_Destroy(info);
    if (!st.ok()) return std::move(st).err();
    return stream_outcome::validated;
  }
  if (s != NATS_NOT_FOUND) return nats_error(s, "reading stream info", "stream=" + spec.name);

  std::vector<const char*> subjects;
  for (const auto& subj : spec.subjects) subjects.push_back(subj.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = spec.name.c_str();
  cfg.Subjects = subjects.data();
  cfg.SubjectsLen = static_cast<int>(subjects.size());
  cfg.Retention = spec.retention;
  cfg.Storage = spec.storage;
  cfg.Replicas = spec.replicas;
  cfg.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(spec.duplicate_window).count();
  cfg.AllowDirect = spec.allow_direct;
  s = js_AddStream(&info, js, &cfg, nullptr, &code);
  if (info != nullptr) jsStreamInfo_Destroy(info);
  if (s != NATS_OK) {
    return nats_error(s, "creating stream (jetstream error " + std::to_string(code) + ")",
                      "stream=" + spec.name);
  }
  ESFLOW_INFO("nats", "created stream {} (replicas {})", spec.name, spec.replicas);
  return stream_outcome::created;
}

status ensure_streams(jsCtx* js, const streams_config& c) {
  for (const auto& spec : {aggregate_events_spec(c), workflow_commands_spec(c), workflow_events_spec(c)}) {
    auto r = ensure_stream(js, spec);
    if (!r.ok()) return std::move(r).err();
  }
  return {};
}

}  // namespace esflow::nats
