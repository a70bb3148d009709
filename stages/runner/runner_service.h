#pragma once
// runner_service: what the runner pipeline's stages share (one per
// pipeline): the sagas and their programs, the data directory's node store,
// event log and workflow streams, the commit pool (group commit off the TBB
// workers), the trackers of the two inputs (the event log, WORKFLOW_EVENTS),
// instance records not yet stored, and the relay's in-flight set.
//
// Checkpoints (checkpoints family, tenant ""): `runner:<pipeline>:log`,
// `runner:<pipeline>:events` and (effects) `runner:<pipeline>:commands`, written in each saga commit as the
// source's watermark WITHOUT the committing input (conservative: a restart re-reads a little and the inputs'
// dedupe markers skip what is stored).
//
// NOTE: thread-safe. Sandboxes are per lane (saga.run), never shared.
#include "common/result.h"
#include "graph/node_kind_descriptor.h"
#include "runtime/program.h"
#include "runtime/sandbox.h"
#include "stages/local_commands.h"
#include "stages/position_tracker.h"
#include "stages/runner/effect_executor.h"
#include "stages/runner/effect_spec.h"
#include "stages/runner/remote_commands.h"
#include "stages/runner/runner_context.h"
#include "stages/runner/saga_spec.h"
#include "storage/commit_pool.h"
#include "storage/event_log.h"
#include "storage/node_store.h"
#include "storage/workflow_stream.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace esflow::runner {

class runner_metrics;

// Claims of schedule items start with this (scheduler.cc); outbox items' claims are their keys.
inline constexpr std::string_view k_schedule_claim_prefix = "schedule\x1f";

// One lane's sandboxes: one per saga.
class lane_sandboxes {
 public:
  runtime::sandbox& get(const saga_config& s);

 private:
  std::map<std::string, std::unique_ptr<runtime::sandbox>> _by_saga;
};

class runner_service {
 public:
  static result<std::shared_ptr<runner_service>> for_pipeline(const graph::node_kind_init& init);
  ~runner_service();

  const std::string& pipeline() const { return _pipeline; }
  const std::vector<saga_config>& sagas() const { return _sagas; }
  // POST /admin/reload and RunnerAdmin.Reload: every saga's program file is
  // read again; all swap (each input runs with the program it started with)
  // or, when one fails to load, compile or define on_event, none does.
  // Instances keep their stored state. The names of the changed sagas.
  result<std::vector<std::string>> reload_programs();
  const saga_config* find_saga(const std::string& name) const;
  bool single_tenant() const { return _single_tenant; }

  storage::node_store& store() { return *_store; }
  storage::event_log& log() { return *_log; }
  storage::workflow_stream& events() { return *_events; }      // WORKFLOW_EVENTS
  storage::workflow_stream& commands() { return *_commands; }  // WORKFLOW_COMMANDS
  storage::commit_pool& committer() { return *_committer; }
  stages::position_tracker& log_tracker() { return _log_tracker; }
  stages::position_tracker& events_tracker() { return _events_tracker; }
  stages::position_tracker& commands_tracker() { return _commands_tracker; }

  // --- effects -------------------------------------------------------------------------
  const std::vector<effect_config>& effects() const { return _effects; }
  // The executor (made on first use: only an effect pipeline runs one).
  effect_executor& executor();
  // A result already stored for (tenant, command id): it is re-published, never run again.
  result<std::optional<std::string>> stored_result(const std::string& tenant, const std::string& command_id);
  // Stores the result (after its publish ack) and the commands checkpoint, through the commit pool.
  void commit_effect(runner_context& ctx, std::function<void(status)> done);
  // What marks an effect done: its stored result (not for a replay) and the
  // commands checkpoint. effect.publish hands it to the result's publish, which
  // the embedded stream writes with the message; effect.done commits it when
  // the stream did not (JetStream).
  storage::write_set effect_done_writes(runner_context& ctx);
  std::string checkpoint_name(const std::string& source) const;
  // A source caught up with nothing in flight moves its checkpoint to the watermark (inputs no
  // commit covered: positions no saga cares about, and the commits' conservative checkpoints).
  // `checkpointed` is what the source last wrote; updated on success. Blocks (a store write):
  // sources' threads only.
  void checkpoint_when_idle(stages::position_tracker& tracker, const std::string& source,
                            schemas::position_t& checkpointed);

  // --- the saga path -----------------------------------------------------------
  // Whether the input's marker is stored (seen before: skip, still ack).
  result<bool> seen(const saga_input& in);
  std::string marker_id(const saga_input& in) const;
  // The instance record: from memory (a transition not yet stored, or one of
  // the last `record_cache` stored), else the store's.
  struct loaded_record {
    std::optional<std::string> record;
    bool pending = false;    // a transition not yet stored
    bool unchanged = false;  // nothing read: the record of the look at `since` stands
    // Read from the store: the look's mark, for a look again with `since`.
    std::uint64_t mark = 0;
  };
  // `since`: the mark of an earlier look for the same message (saga.load's,
  // for saga.run). When memory still has nothing and has forgotten nothing
  // since, no transition of the instance can have happened in between (each
  // one stays in memory at least until stored), so the store is not read again.
  result<loaded_record> load(const saga_input& in, std::uint64_t since = 0);
  // How many stored instance records stay in memory (least recently used
  // go first): an instance's next inputs usually come milliseconds later, and
  // saga.load and saga.run both read the record (saga.load's `cache`).
  void set_record_cache(std::size_t n);
  // Whether memory holds the instance's record as stored and done: its inputs
  // change nothing and need no marker (docs/runner.md "The commit"), so a
  // follower drops them before they become messages. False when it does not
  // know (evicted, never seen, a transition still being written).
  bool stored_done(const std::string& instance_key);
  // Runs every input of the message against the record in the lane's sandboxes.
  status run(lane_sandboxes& lanes, runner_context& ctx);
  // A message that will not reach saga.commit gives back the inputs it was running.
  void release_running(runner_context& ctx);
  // Writes the message's transitions, markers and checkpoint in ONE
  // write_set through the commit pool; done on a committer thread.
  void commit(runner_context& ctx, std::function<void(status)> done);
  std::uint64_t now_ms() const;

  // --- relay and scheduler ---------------------------------------------------------
  // Wakes outbox.scan (new items, freed slots, retries) or schedule.scan (new schedules).
  // Each scan has its own flag: a wake meant for one is never used up by the other.
  void wake_outbox();
  // Only when a new schedule falls due before schedule.scan looks again on its own.
  void wake_schedules(std::uint64_t earliest_due_ms);
  // Waits up to `d` for the scan's wake or the stop.
  // `wants_slots`: items wait for their tenant's slots, so a finished dispatch wakes it too.
  void wait_for_outbox(std::chrono::milliseconds d, const std::stop_token& stop, bool wants_slots = false);
  void wait_for_schedules(std::chrono::milliseconds d, const std::stop_token& stop);
  // Items the last saga commits wrote, and items released for a retry (with
  // the time they may go again), for outbox.scan to hand out without a pass
  // over the whole outbox: a pass also walks every item deleted since the
  // last compaction (RocksDB tombstones), which grows with the traffic.
  // Bounded (outbox.scan's `max_hints`); past the bound items are dropped
  // (counted) and `dropped` tells the scan to make a pass, which finds them.
  // Each commit's item comes with the outbox serial its commit took before
  // its write (outbox_serial).
  struct hinted_item {
    storage::outbox_item item;
    std::uint64_t serial = 0;
  };
  struct outbox_hints {
    std::vector<hinted_item> items;
    std::vector<std::pair<std::chrono::steady_clock::time_point, storage::outbox_item>> retries;
    bool dropped = false;
  };
  outbox_hints take_outbox_hints();
  // The serial of the latest commit that wrote outbox items, taken before its
  // write: read after a pass's page, every item that page could see is at or
  // below it (outbox.scan sends only hints above it without reading them back).
  std::uint64_t outbox_serial() const { return _outbox_serial.load(); }
  void set_outbox_hint_bound(std::size_t n) { _hint_bound.store(n); }
  std::size_t outbox_hint_bound() const { return _hint_bound.load(); }
  // Items being dispatched (not handed out twice), and when a failed one may
  // retry. A claim with a tenant counts in that tenant's in_flight_of.
  bool claim(const std::string& key, std::chrono::steady_clock::time_point now,
             const std::string& tenant = {});
  // Done with a claimed key: confirmed (forgotten) or failed (retried after
  // an exponential backoff with full jitter, 100 ms doubling up to 10 s).
  void release(const std::string& key, bool failed);
  // A failed outbox item: released as above and handed back to outbox.scan
  // for when its backoff ends.
  void release_for_retry(storage::outbox_item item);
  std::size_t in_flight_of(const std::string& tenant) const;

  // The JSON of GET /admin/outbox: depth and oldest age per tenant and kind.
  result<std::string> outbox_json();
  // Headers of a workflow message (docs/contract.md "Headers").
  static storage::message_headers headers_for(const std::string& tenant, const std::string& correlation_id,
                                              const std::string& trace_id);
  // The aggregate pipeline of this process's data directory (esflow dev), when it takes local commands.
  std::shared_ptr<stages::local_command_port> local_commands() const { return _local_commands; }
  // NATS request/reply to aggregate nodes elsewhere (when the pipeline has a nats_url); null otherwise.
  remote_commands* remote() const { return _remote.get(); }

  // GET /v1/sagas/<saga>/<correlation id>.
  result<std::optional<std::string>> instance_json(const std::string& tenant, const std::string& saga,
                                                   const std::string& correlation_id);

  // --- operations (runner_admin.cc: quarantine retry, replay; runner_metrics.h) ----------
  // Inputs handed to the saga path again, their markers already deleted: saga.follow
  // admits each as one fresh message (keyed by instance, ack a no-op). `source` and
  // `position` name the quarantine record it would be written to again.
  struct retry_item {
    std::string source;  // log | events
    schemas::position_t position = 0;
    int attempts = 1;                // the quarantine record's attempts when it fails again
    std::vector<saga_input> inputs;  // of one instance, in order
    int requeued = 0;                // handed back after a failed commit (at most 3 times)
  };
  void enqueue_retries(std::vector<retry_item> items);
  std::vector<retry_item> take_retries(std::size_t max);
  // Null until the node kind attached them (runner_admin.cc); stages check.
  runner_metrics* metrics() const { return _metrics.get(); }
  void set_metrics(std::shared_ptr<runner_metrics> m) { _metrics = std::move(m); }

 private:
  runner_service() = default;

  std::string _pipeline;
  bool _single_tenant = false;
  runtime::program_cache _programs;
  std::mutex _reload_mu;  // one reload at a time
  std::vector<saga_config> _sagas;
  std::shared_ptr<storage::node_store> _store;
  std::shared_ptr<storage::event_log> _log;
  std::shared_ptr<storage::workflow_stream> _events;
  std::shared_ptr<storage::workflow_stream> _commands;
  std::unique_ptr<storage::commit_pool> _committer;
  std::shared_ptr<stages::local_command_port> _local_commands;
  std::unique_ptr<remote_commands> _remote;
  stages::position_tracker _log_tracker;
  stages::position_tracker _events_tracker;
  stages::position_tracker _commands_tracker;
  std::vector<effect_config> _effects;
  std::mutex _executor_mu;
  std::unique_ptr<effect_executor> _executor;

  std::mutex _pending_mu;
  // Instance records in memory, by instance key: transitions on their way to
  // the store, and the last stored ones (bounded by _record_cache). Only this
  // service writes saga records, so a stored one equals the store's.
  struct instance_record {
    std::string record;
    std::uint64_t serial = 0;  // the transition's (ctx.pending_serial)
    bool stored = false;
    bool done = false;                     // the record's `done`: the instance takes no more inputs
    std::list<std::string>::iterator lru;  // in _stored_order when stored
  };
  std::unordered_map<std::string, instance_record> _records;
  std::list<std::string> _stored_order;  // stored records, least recently used first
  std::size_t _record_cache = 4096;
  std::uint64_t _records_forgotten = 0;  // records dropped from memory (evicted, failed, cache 0)
  // Under _pending_mu: drops the least recently used stored records over _record_cache.
  void forget_over_cache();
  std::uint64_t _pending_serial = 0;
  // Markers of inputs run but not yet stored (tenant + marker): a second delivery of one
  // (a JetStream redelivery racing the first) is skipped instead of running twice.
  std::set<std::string> _running_markers;

  mutable std::mutex _work_mu;
  // A scan's wake-up, guarded by _work_mu. `woken`: there is work (the wait returns at once);
  // the notify is sent once per wait, and for a freed slot only when the scan waits for one
  // (`wants_slots`: the outbox scan while items wait for their tenant's slots; the schedule scan
  // always).
  struct wake_signal {
    std::condition_variable_any cv;
    bool woken = false, notified = false, wants_slots = false;
  };
  wake_signal _outbox_wake, _schedules_wake;
  outbox_hints _hints;  // guarded by _work_mu
  std::atomic<std::size_t> _hint_bound{65536};
  std::atomic<std::uint64_t> _outbox_serial{0};
  // When schedule.scan looks again unwoken; the maximum while it scans.
  std::atomic<std::uint64_t> _schedule_scan_next_ms{std::numeric_limits<std::uint64_t>::max()};
  struct claim_state {
    bool in_flight = false;
    int failures = 0;
    std::chrono::steady_clock::time_point not_before;
    std::string tenant;  // counted in _in_flight_by_tenant while in flight (outbox items)
  };
  std::unordered_map<std::string, claim_state> _claims;
  std::unordered_map<std::string, std::size_t> _in_flight_by_tenant;
  // Marks a claim done: in flight no more; its tenant's count goes down. Under _work_mu.
  void end_claim(claim_state& c);
  // Backoff of a failed claim; the time it may go again. Under _work_mu.
  std::chrono::steady_clock::time_point back_off(claim_state& c);
  // Whether n more items fit beside the hints and retries waiting. Under _work_mu.
  bool hints_have_room(std::size_t n) const;
  // Sets a scan's wake-up / waits for it (and clears it).
  void wake(wake_signal& s);
  // Under _work_mu: there is work; true when the caller must notify (after unlocking).
  static bool mark_woken(wake_signal& s, bool notify = true);
  void wait_for(wake_signal& s, std::chrono::milliseconds d, const std::stop_token& stop,
                bool wants_slots = false);

  std::mutex _retry_mu;
  std::deque<retry_item> _retries;
  std::shared_ptr<runner_metrics> _metrics;
};

}  // namespace esflow::runner
