#include "storage/jetstream/jetstream_event_log.h"

#include "common/log.h"
#include "schemas/json_decode.h"
#include "schemas/json_encode.h"
#include "storage/jetstream/async_publish.h"
#include "storage/keys.h"
#include "transport/nats/headers.h"
#include "transport/nats/subjects.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <pthread.h>
#include <thread>
#include <unordered_map>

namespace esflow::storage::jetstream {

using namespace esflow::nats;  // NOLINT(google-build-using-namespace): this backend speaks NATS throughout

namespace {

// read_from: beyond this many commits behind the head, an ordered consumer streams the page.
constexpr std::uint64_t k_direct_read_from = 16;

using storage::append_request;
using storage::append_result;
using storage::position_t;
using storage::positioned_commit;
using storage::version_t;

// jsErrCode of a stale Nats-Expected-Last-Subject-Sequence ("wrong last sequence").
constexpr int wrong_last_sequence = 10071;
// An expectation no subject can meet: a probe publish is stored never, so
// the server answers either "duplicate" (the Nats-Msg-Id is known) or 10071.
constexpr std::uint64_t impossible_sequence = UINT64_MAX;

std::uint64_t system_now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::string aggregate_ctx(std::string_view tenant, std::string_view type, std::string_view id) {
  std::string ctx = "tenant=";
  ctx += tenant;
  ctx += " aggregate=";
  ctx += type;
  ctx += '/';
  ctx += id;
  return ctx;
}

std::string request_ctx(const append_request& r) {
  return aggregate_ctx(r.tenant_id, r.aggregate_type, r.aggregate_id);
}

struct msg_guard {
  natsMsg* m = nullptr;
  ~msg_guard() {
    if (m != nullptr) natsMsg_Destroy(m);
  }
};

struct pending {
  append_request request;
  storage::event_log::append_callback done;
  std::string subject;
};

struct ack {
  const void* msg = nullptr;  // the published message (identity only: tells a stale ack apart)
  std::string subject;
  std::uint64_t sequence = 0;
  bool duplicate = false;
  natsStatus err = NATS_OK;
  int code = 0;
  std::string text;
};

struct aggregate_state {
  bool known = false;  // version/sequence loaded and trusted
  version_t version = 0;
  std::uint64_t sequence = 0;  // stream sequence of the aggregate's last message; 0 = none
  bool busy = false;           // a publish is in flight
  bool probe = false;          // the in-flight publish is a probe
  version_t first = 0;         // first version of the in-flight commit
  std::optional<pending> in_flight;
  const void* in_flight_msg = nullptr;         // its natsMsg, alive in nats.c until its ack
  std::chrono::steady_clock::time_point sent;  // of the in-flight publish
  std::deque<pending> waiting;
};

struct completion {
  storage::event_log::append_callback done;
  result<append_result> outcome;
  bool stored_new = false;  // relies on this batch's dedupe write
};

}  // namespace

struct jetstream_event_log::impl {
  impl(nats_connection& c, node_store& st, jetstream_options o)
      : _conn(c), _store(st), _options(std::move(o)) {
    if (!_options.now_ms) _options.now_ms = system_now_ms;
  }

  nats_connection& _conn;
  node_store& _store;
  jetstream_options _options;
  jsCtx* _js = nullptr;
  std::string _stream;

  std::mutex _mu;
  std::condition_variable _cv;
  std::deque<pending> _inbox;  // guarded by _mu
  std::deque<ack> _acks;       // guarded by _mu
  bool _closing = false;       // guarded by _mu
  bool _link_lost = false;     // a disconnect since the submit thread last looked; guarded by _mu
  std::uint64_t _listener = 0;
  std::size_t _pending = 0;  // accepted, not completed; guarded by _mu
  std::thread _thread;

  // Submit thread only.
  std::unordered_map<std::string, aggregate_state> _aggs;  // by subject
  std::size_t _in_flight = 0;

  struct {
    std::atomic<std::uint64_t> appends{0}, publishes{0}, commits{0}, local_duplicates{0},
        server_duplicates{0}, conflicts{0}, unavailable{0}, version_loads{0}, direct_gets{0},
        tail_consumers{0}, ack_batches{0}, in_flight{0};
    ack_latency_histogram ack_latency;
  } _stats;

  // ---- nats.c side -------------------------------------------------------------

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<impl*>(closure);
    ack a;
    a.msg = msg;
    if (const char* s = natsMsg_GetSubject(msg); s != nullptr) a.subject = s;
    if (pae != nullptr) {
      a.err = pae->Err == NATS_OK ? NATS_ERR : pae->Err;
      a.code = static_cast<int>(pae->ErrCode);
      if (pae->ErrText != nullptr) a.text = pae->ErrText;
    } else if (pa != nullptr) {
      a.sequence = pa->Sequence;
      a.duplicate = pa->Duplicate;
    } else {
      a.err = NATS_ERR;
      a.text = "ack without result";
    }
    natsMsg_Destroy(msg);
    bool wake = false;
    {
      std::lock_guard lock(self->_mu);
      // The submit thread swaps the whole queue out: only the first ack of
      // a burst needs to wake it.
      wake = self->_acks.empty();
      self->_acks.push_back(std::move(a));
    }
    if (wake) self->_cv.notify_one();
  }

  // ---- blocking helpers (submit thread, and readers) ---------------------------------

  // The message found by a direct get; nullptr when there is none.
  result<natsMsg*> direct_get(std::uint64_t sequence, const char* next_by, const char* last_by) {
    if (auto s = _conn.check(); !s.ok()) return std::move(s).err();
    ++_stats.direct_gets;
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.Sequence = sequence;
    o.NextBySubject = next_by;
    o.LastBySubject = last_by;
    natsMsg* msg = nullptr;
    auto s = js_DirectGetMsg(&msg, _js, _stream.c_str(), nullptr, &o);
    if (s == NATS_NOT_FOUND) return static_cast<natsMsg*>(nullptr);
    if (s != NATS_OK) {
      return nats_error(s, "direct get",
                        "stream=" + _stream + (next_by ? " next_by=" + std::string(next_by) : "") +
                            (last_by ? " last_by=" + std::string(last_by) : ""));
    }
    return msg;
  }

  // Decodes a stored commit; tenant/type/id come from the subject (exact for
  // any bytes: tokens are escaped injectively), versions and ids are stamped
  // on every event.
  // `sequence`: the message's stream sequence when nats.c does not carry it
  // (a consumer's message: from its metadata); 0 = natsMsg_GetSequence.
  result<positioned_commit> decode(natsMsg* msg, std::uint64_t sequence = 0) {
    positioned_commit pc;
    pc.position = sequence != 0 ? sequence : natsMsg_GetSequence(msg);
    const char* subj = natsMsg_GetSubject(msg);
    auto addr = parse_aggregate_subject(subj == nullptr ? "" : subj);
    if (!addr) {
      return error::make(errc::internal, "stored commit on a foreign subject",
                         "stream=" + _stream + " seq=" + std::to_string(pc.position));
    }
    std::string_view body(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    auto c = schemas::decode_commit(body);
    if (!c.ok()) {
      auto e = std::move(c).err();
      e.context += " stream=" + _stream + " seq=" + std::to_string(pc.position);
      return e;
    }
    pc.commit = std::move(c).value();
    pc.commit.tenant_id = std::move(addr->tenant);
    pc.commit.aggregate_type = std::move(addr->type);
    pc.commit.aggregate_id = std::move(addr->id);
    for (std::size_t i = 0; i < pc.commit.events.size(); ++i) {
      auto& e = pc.commit.events[i];
      e.tenant_id = pc.commit.tenant_id;
      e.aggregate_type = pc.commit.aggregate_type;
      e.aggregate_id = pc.commit.aggregate_id;
      e.command_id = pc.commit.command_id;
      e.version = pc.commit.first_version + i;
    }
    return pc;
  }

  // Hands `on_commit` the commits of `subject` with sequences in [from, to],
  // in order, through an ordered push consumer (one consumer-create round
  // trip, then the server streams them): a long tail costs a few round trips
  // instead of one direct get per commit. Stops at `to` or when on_commit
  // answers false; each message waits at most request_timeout.
  status consume_range(const std::string& subject, std::uint64_t from, std::uint64_t to,
                       const std::function<bool(positioned_commit&)>& on_commit) {
    if (auto s = _conn.check(); !s.ok()) return std::move(s).err();
    ++_stats.tail_consumers;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = _stream.c_str();
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    natsSubscription* sub = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto st = js_SubscribeSync(&sub, _js, subject.c_str(), nullptr, &so, &code);
    if (st != NATS_OK) return nats_error(st, "ordered consumer", "stream=" + _stream + " subject=" + subject);
    std::optional<error> failure;
    for (;;) {
      natsMsg* raw = nullptr;
      st = natsSubscription_NextMsg(&raw, sub, _options.request_timeout.count());
      if (st != NATS_OK) {
        failure = nats_error(st, "reading the ordered consumer", "stream=" + _stream + " subject=" + subject);
        break;
      }
      msg_guard g{raw};
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, raw) != NATS_OK || meta == nullptr) continue;  // not a stream message
      const std::uint64_t seq = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
      auto pc = decode(raw, seq);
      if (!pc.ok()) {
        failure = std::move(pc).err();
        break;
      }
      if (!on_commit(pc.value()) || seq >= to) break;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    if (failure) return std::move(*failure);
    return {};
  }

  struct last_info {
    version_t version = 0;
    std::uint64_t sequence = 0;
  };

  // The aggregate's last message, from the stream's leader (STREAM.MSG.GET,
  // not a direct get): with replicas, a direct get may be answered by a
  // follower that lags, and a stale version would only buy another conflict.
  result<natsMsg*> leader_get_last(const std::string& subject) {
    if (auto s = _conn.check(); !s.ok()) return std::move(s).err();
    natsMsg* msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetLastMsg(&msg, _js, _stream.c_str(), subject.c_str(), nullptr, &code);
    if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return static_cast<natsMsg*>(nullptr);
    if (s != NATS_OK) return nats_error(s, "get last message", "stream=" + _stream + " subject=" + subject);
    return msg;
  }

  result<last_info> load_last(const std::string& subject) {
    ++_stats.version_loads;
    auto m = leader_get_last(subject);
    if (!m.ok()) return std::move(m).err();
    msg_guard g{*m};
    if (g.m == nullptr) return last_info{};
    auto pc = decode(g.m);
    if (!pc.ok()) return std::move(pc).err();
    last_info li;
    li.sequence = pc->position;
    li.version = pc->commit.first_version + pc->commit.events.size() - (pc->commit.events.empty() ? 0 : 1);
    return li;
  }

  // Another backend's entry is not ours: treated as unknown.
  result<std::optional<dedupe_record>> load_dedupe(std::string_view tenant, std::string_view command_id) {
    return _store.dedupe().get(tenant, command_id, dedupe_origin::jetstream, _options.now_ms());
  }

  // The stored commit at `sequence` as the answer to a resent command id.
  // nullopt when that message is not the command's commit.
  result<std::optional<std::pair<append_result, sha256_digest>>> original_at(std::uint64_t sequence,
                                                                             std::string_view tenant,
                                                                             std::string_view command_id) {
    using out_t = std::optional<std::pair<append_result, sha256_digest>>;
    auto m = direct_get(sequence, nullptr, nullptr);
    if (!m.ok()) return std::move(m).err();
    msg_guard g{*m};
    // Not found is not "another message": direct gets may be answered by any
    // replica, and one that has not applied the sequence yet (after a leader
    // change) has nothing there. Retryable; a different message stays internal.
    if (g.m == nullptr)
      return error::make(errc::unavailable, "the message a dedupe entry points at is not readable yet",
                         "stream=" + _stream + " seq=" + std::to_string(sequence));
    if (natsMsg_GetSequence(g.m) != sequence) return out_t{};
    auto hash = get_request_hash(g.m);
    auto pc = decode(g.m);
    if (!pc.ok()) return std::move(pc).err();
    if (pc->commit.tenant_id != tenant || pc->commit.command_id != command_id) return out_t{};
    append_result r;
    r.first_version = pc->commit.first_version;
    r.last_version = pc->commit.first_version + pc->commit.events.size() - 1;
    r.position = pc->position;
    r.duplicate = true;
    r.events = std::move(pc->commit.events);
    // No header, or the 16-digit one of before SHA-256: a different hash, as
    // for old dedupe entries (storage/dedupe_store.h).
    return out_t{std::pair{std::move(r), hash.value_or(sha256_digest{})}};
  }

  error reused(const append_request& r) {
    return error::make(errc::command_id_reused,
                       "command id " + r.command_id + " was already used with another aggregate or payload",
                       request_ctx(r));
  }

  error conflict(const append_request& r, version_t actual) {
    ++_stats.conflicts;
    return error::make(
        errc::version_conflict,
        "expected version " + std::to_string(r.expected_version) + ", actual " + std::to_string(actual),
        request_ctx(r));
  }

  // ---- submit thread -------------------------------------------------------------------

  void run() {
    std::deque<pending> inbox;
    std::deque<ack> acks;
    std::optional<std::chrono::steady_clock::time_point> close_deadline;
    for (;;) {
      bool closing = false;
      bool link_lost = false;
      {
        std::unique_lock lock(_mu);
        _cv.wait_for(lock, std::chrono::milliseconds(100),
                     [this] { return _closing || _link_lost || !_inbox.empty() || !_acks.empty(); });
        inbox.swap(_inbox);
        acks.swap(_acks);
        closing = _closing;
        link_lost = std::exchange(_link_lost, false);
      }
      if (!acks.empty()) handle_acks(acks);
      if (link_lost) fail_in_flight();
      acks.clear();
      for (auto& p : inbox) admit(std::move(p));
      inbox.clear();
      if (closing) {
        if (!close_deadline) {
          close_deadline =
              std::chrono::steady_clock::now() + _options.publish_timeout + std::chrono::seconds(2);
        }
        std::unique_lock lock(_mu);
        if (_pending == 0 && _inbox.empty() && _acks.empty()) return;
        if (std::chrono::steady_clock::now() > *close_deadline) {
          lock.unlock();
          abandon_all();
          return;
        }
      }
    }
  }

  // Completes `p` now (not published).
  void finish(pending& p, result<append_result> outcome) {
    {
      std::lock_guard lock(_mu);
      --_pending;
    }
    p.done(std::move(outcome));
  }

  void evict_idle() {
    if (_aggs.size() <= _options.version_cache_max) return;
    for (auto it = _aggs.begin(); it != _aggs.end();) {
      if (!it->second.busy && it->second.waiting.empty()) {
        it = _aggs.erase(it);
      } else {
        ++it;
      }
    }
  }

  void admit(pending p) {
    ++_stats.appends;
    evict_idle();
    p.subject = aggregate_subject(p.request.tenant_id, p.request.aggregate_type, p.request.aggregate_id);
    auto& st = _aggs[p.subject];
    st.waiting.push_back(std::move(p));
    pump(st);
  }

  // Starts waiting appends of one aggregate until one is in flight.
  void pump(aggregate_state& st) {
    while (!st.busy && !st.waiting.empty()) {
      pending p = std::move(st.waiting.front());
      st.waiting.pop_front();
      start(st, p);
    }
  }

  void start(aggregate_state& st, pending& p) {
    auto& r = p.request;
    if (auto s = _conn.check(); !s.ok()) {
      ++_stats.unavailable;
      st.known = false;
      return finish(p, std::move(s).err());
    }
    auto known = load_dedupe(r.tenant_id, r.command_id);
    if (!known.ok()) return finish(p, std::move(known).err());
    if (*known) {
      if ((*known)->request_hash != r.request_hash) return finish(p, reused(r));
      auto orig = original_at((*known)->position, r.tenant_id, r.command_id);
      if (!orig.ok()) return finish(p, std::move(orig).err());
      if (!*orig) {
        return finish(p, error::make(errc::internal, "dedupe entry points at another message",
                                     request_ctx(r) + " seq=" + std::to_string((*known)->position)));
      }
      ++_stats.local_duplicates;
      return finish(p, std::move((*orig)->first));
    }
    if (!st.known && r.expected_version == 0 && !r.events.empty()) {
      // A first commit needs no cold load (a blocking round trip on this
      // thread, which serialises every new aggregate): it is published with
      // ExpectNoMessage, so the server itself refuses it (10071 -> reload
      // in handle_acks -> version_conflict) when the subject holds anything,
      // and Nats-Msg-Id is checked before that expectation, so a resend of
      // a stored first command is still answered as a duplicate.
      st.version = 0;
      st.sequence = 0;
    } else if (!st.known || r.expected_version > st.version) {
      auto li = load_last(p.subject);
      if (!li.ok()) {
        ++_stats.unavailable;
        return finish(p, std::move(li).err());
      }
      st.known = true;
      st.version = li->version;
      st.sequence = li->sequence;
    }
    bool probe = false;
    if (r.expected_version != st.version) {
      // A stale version may still be the resend of a command whose answer was
      // lost: let JetStream's Nats-Msg-Id window decide (probe: never stored).
      if (r.events.empty()) return finish(p, conflict(r, st.version));
      probe = true;
    }
    if (r.events.empty()) {
      append_result out;
      out.first_version = out.last_version = st.version;
      return finish(p, std::move(out));
    }
    publish(st, p, probe);
  }

  void publish(aggregate_state& st, pending& p, bool probe) {
    auto& r = p.request;
    schemas::commit c;
    c.tenant_id = r.tenant_id;
    c.aggregate_type = r.aggregate_type;
    c.aggregate_id = r.aggregate_id;
    c.command_id = r.command_id;
    c.first_version = st.version + 1;
    c.events = std::move(r.events);
    for (std::size_t i = 0; i < c.events.size(); ++i) {
      auto& e = c.events[i];
      e.tenant_id = r.tenant_id;
      e.aggregate_type = r.aggregate_type;
      e.aggregate_id = r.aggregate_id;
      e.command_id = r.command_id;
      e.version = c.first_version + i;
    }
    std::string body = schemas::encode_commit(c);
    msg_guard g;
    auto s = natsMsg_Create(&g.m, p.subject.c_str(), nullptr, body.data(), static_cast<int>(body.size()));
    status hs = s == NATS_OK ? set_commit_headers(g.m, c, commit_trace(c), r.request_hash)
                             : status(nats_error(s, "creating message", request_ctx(r)));
    r.events = std::move(c.events);
    if (!hs.ok()) return finish(p, std::move(hs).err());

    auto msg_id = commit_msg_id(r.tenant_id, r.command_id);
    jsPubOptions o;
    jsPubOptions_Init(&o);
    o.MaxWait = _options.publish_timeout.count();
    o.MsgId = msg_id.c_str();
    if (probe) {
      o.ExpectLastSubjectSeq = impossible_sequence;
    } else if (st.sequence == 0) {
      o.ExpectNoMessage = true;
    } else {
      o.ExpectLastSubjectSeq = st.sequence;
    }
    st.busy = true;
    st.probe = probe;
    st.first = c.first_version;
    st.in_flight.emplace(std::move(p));
    st.in_flight_msg = g.m;
    st.sent = std::chrono::steady_clock::now();
    ++_in_flight;
    _stats.in_flight.store(_in_flight, std::memory_order_relaxed);
    ++_stats.publishes;
    s = js_PublishMsgAsync(_js, &g.m, &o);
    if (s != NATS_OK) {
      --_in_flight;
      st.busy = false;
      st.in_flight_msg = nullptr;
      st.known = false;
      ++_stats.unavailable;
      pending q = std::move(*st.in_flight);
      st.in_flight.reset();
      finish(q, nats_error(s, "publishing commit", request_ctx(q.request)));
    }
  }

  void handle_acks(std::deque<ack>& acks) {
    std::vector<completion> done;
    std::vector<aggregate_state*> touched;
    auto wb = _store.begin();
    std::size_t puts = 0;
    const std::uint64_t expires = _options.now_ms() + static_cast<std::uint64_t>(_options.dedupe_ttl.count());

    for (auto& a : acks) {
      auto it = _aggs.find(a.subject);
      // Abandoned (close, lost link): a late ack of that publish is stale.
      if (it == _aggs.end() || !it->second.in_flight || it->second.in_flight_msg != a.msg) continue;
      auto& st = it->second;
      pending p = std::move(*st.in_flight);
      st.in_flight.reset();
      st.in_flight_msg = nullptr;
      st.busy = false;
      --_in_flight;
      _stats.in_flight.store(_in_flight, std::memory_order_relaxed);
      _stats.ack_latency.record(std::chrono::steady_clock::now() - st.sent);
      touched.push_back(&st);
      auto& r = p.request;

      if (a.err == NATS_OK && !a.duplicate && !st.probe) {
        append_result out;
        out.first_version = st.first;
        out.last_version = st.first + r.events.size() - 1;
        out.position = a.sequence;
        out.events = std::move(r.events);
        st.known = true;
        st.version = out.last_version;
        st.sequence = a.sequence;
        _store.dedupe().put(wb, r.tenant_id, r.command_id, dedupe_origin::jetstream,
                            {expires, r.request_hash, out.position, out.first_version, out.last_version});
        ++puts;
        ++_stats.commits;
        done.push_back({std::move(p.done), std::move(out), true});
      } else if (a.err == NATS_OK && a.duplicate) {
        // Stored earlier (a resend after a lost answer, or the same command id
        // in flight on another aggregate): the original message decides.
        ++_stats.server_duplicates;
        st.known = false;
        auto orig = original_at(a.sequence, r.tenant_id, r.command_id);
        if (!orig.ok()) {
          done.push_back({std::move(p.done), std::move(orig).err(), false});
        } else if (!*orig) {
          done.push_back({std::move(p.done),
                          error::make(errc::internal, "duplicate ack points at another message",
                                      request_ctx(r) + " seq=" + std::to_string(a.sequence)),
                          false});
        } else if ((*orig)->second != r.request_hash) {
          done.push_back({std::move(p.done), reused(r), false});
        } else {
          auto& orig_result = (*orig)->first;
          _store.dedupe().put(wb, r.tenant_id, r.command_id, dedupe_origin::jetstream,
                              {expires, r.request_hash, orig_result.position, orig_result.first_version,
                               orig_result.last_version});
          ++puts;
          done.push_back({std::move(p.done), std::move(orig_result), false});
        }
      } else if (a.err == NATS_OK) {
        // A probe that got stored cannot happen (impossible expectation).
        st.known = false;
        done.push_back({std::move(p.done),
                        error::make(errc::internal, "probe publish was stored", request_ctx(r)), false});
      } else if (a.code == wrong_last_sequence) {
        if (st.probe) {
          done.push_back({std::move(p.done), conflict(r, st.version), false});
        } else {
          auto li = load_last(a.subject);
          if (!li.ok()) {
            st.known = false;
            ++_stats.unavailable;
            done.push_back({std::move(p.done), std::move(li).err(), false});
          } else {
            st.known = true;
            st.version = li->version;
            st.sequence = li->sequence;
            done.push_back({std::move(p.done), conflict(r, st.version), false});
          }
        }
      } else {
        // Timeout, no responders, connection loss: may or may not be stored.
        st.known = false;
        ++_stats.unavailable;
        std::string msg = "commit not acknowledged: ";
        msg += a.text.empty() ? natsStatus_GetText(a.err) : a.text;
        if (a.code != 0) msg += " (jetstream error " + std::to_string(a.code) + ")";
        done.push_back(
            {std::move(p.done), error::make(errc::unavailable, std::move(msg), request_ctx(r)), false});
      }
    }

    if (puts > 0) {
      ++_stats.ack_batches;
      auto s = _store.commit(wb);
      if (!s.ok()) {
        // The commits are in the stream, but a duplicate could no longer be
        // recognised beyond the window: answer "may or may not be stored".
        ESFLOW_ERROR("nats", "dedupe write of {} commits failed: {}", puts, s.err().to_string());
        for (auto& d : done) {
          if (d.outcome.ok()) d.outcome = s.err();
        }
      }
    }
    {
      std::lock_guard lock(_mu);
      _pending -= done.size();
    }
    for (auto& d : done) d.done(std::move(d.outcome));
    for (auto* st : touched) pump(*st);
  }

  // The link went down: nothing in flight will be acknowledged in time, and
  // the client should not wait for the publish timeout to learn it. Every
  // in-flight commit is answered unavailable ("may or may not be stored":
  // nats.c may still resend it after a reconnect; the command id dedupes a
  // resend), every waiting one too; versions are reloaded on the next use.
  void fail_in_flight() {
    std::size_t failed = 0;
    for (auto& [subject, st] : _aggs) {
      st.known = false;
      if (st.in_flight) {
        pending p = std::move(*st.in_flight);
        st.in_flight.reset();
        st.in_flight_msg = nullptr;
        st.busy = false;
        --_in_flight;
        ++failed;
        finish(p, error::make(errc::unavailable,
                              "NATS connection lost before the commit was acknowledged (it may or may not be "
                              "stored; resend with the same command id)",
                              request_ctx(p.request)));
      }
      while (!st.waiting.empty()) {
        pending p = std::move(st.waiting.front());
        st.waiting.pop_front();
        ++failed;
        finish(p, error::make(errc::unavailable, "NATS connection lost", request_ctx(p.request)));
      }
    }
    _stats.unavailable += failed;
    _stats.in_flight.store(_in_flight, std::memory_order_relaxed);
    if (failed > 0) ESFLOW_WARN("nats", "NATS connection lost: {} commits answered unavailable", failed);
  }

  // close() ran out of time: everything still queued or in flight fails.
  void abandon_all() {
    for (auto& [subject, st] : _aggs) {
      if (st.in_flight) {
        pending p = std::move(*st.in_flight);
        st.in_flight.reset();
        st.busy = false;
        finish(p, error::make(errc::unavailable, "event log closed before the commit was acknowledged",
                              request_ctx(p.request)));
      }
      while (!st.waiting.empty()) {
        pending p = std::move(st.waiting.front());
        st.waiting.pop_front();
        finish(p, error::make(errc::unavailable, "event log is closed", request_ctx(p.request)));
      }
    }
    _in_flight = 0;
  }

  void enqueue(pending p) {
    std::unique_lock lock(_mu);
    if (_closing) {
      lock.unlock();
      p.done(error::make(errc::unavailable, "event log is closed", request_ctx(p.request)));
      return;
    }
    if (_pending >= _options.max_pending) {
      lock.unlock();
      ++_stats.unavailable;
      p.done(error::make(errc::unavailable, "commit queue full",
                         "max_pending=" + std::to_string(_options.max_pending)));
      return;
    }
    ++_pending;
    bool was_empty = _inbox.empty();
    _inbox.push_back(std::move(p));
    lock.unlock();
    if (was_empty) _cv.notify_one();
  }
};

jetstream_event_log::jetstream_event_log(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

jetstream_event_log::~jetstream_event_log() {
  esflow::ignore(close());
  if (_impl->_js != nullptr) jsCtx_Destroy(_impl->_js);
}

result<std::unique_ptr<jetstream_event_log>> jetstream_event_log::open(nats_connection& connection,
                                                                       node_store& store,
                                                                       jetstream_options options) {
  if (store.database().raw() == nullptr) {
    return error::make(errc::unavailable, "database is closed", "path=" + store.data_dir());
  }
  auto p = std::make_unique<impl>(connection, store, std::move(options));
  p->_stream = p->_options.stream;
  auto js = async_publish_context(connection, p->_options.request_timeout,
                                  static_cast<std::int64_t>(p->_options.max_pending), &impl::on_ack, p.get());
  if (!js.ok()) return std::move(js).err();
  p->_js = *js;
  auto* raw = p.get();
  std::unique_ptr<jetstream_event_log> log(new jetstream_event_log(std::move(p)));
  if (raw->_options.ensure_stream) {
    auto spec = aggregate_events_spec(raw->_options.streams);
    spec.name = raw->_stream;
    auto r = ensure_stream(raw->_js, spec);
    if (!r.ok()) return std::move(r).err();
  }
  raw->_listener = connection.add_disconnect_listener([raw] {
    {
      std::lock_guard lock(raw->_mu);
      raw->_link_lost = true;
    }
    raw->_cv.notify_one();
  });
  raw->_thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "esflow-js");
    // Thread boundary: nothing may escape. A log whose commit thread is gone
    // cannot answer its appends; stop the process with the reason (a restart
    // recovers from the log) rather than leave callers waiting.
    try {
      raw->run();
    } catch (const std::exception& e) {
      ESFLOW_ERROR("nats", "esflow-js thread failed: {}; stopping the process", e.what());
      std::abort();
    } catch (...) {
      ESFLOW_ERROR("nats", "esflow-js thread failed with a non-standard exception; stopping the process");
      std::abort();
    }
  });
  ESFLOW_INFO("nats", "jetstream event log open on stream {}", raw->_stream);
  return log;
}

void jetstream_event_log::append(storage::append_request request, append_callback done) {
  if (request.command_id.empty()) {
    auto ctx = request_ctx(request);
    done(error::make(errc::invalid_command, "command id is empty", std::move(ctx)));
    return;
  }
  _impl->enqueue(pending{std::move(request), std::move(done), {}});
}

result<std::vector<schemas::event>> jetstream_event_log::read(std::string_view tenant, std::string_view type,
                                                              std::string_view id, storage::version_t after,
                                                              std::size_t limit) {
  auto page = read_page(tenant, type, id, after, 0, limit);
  if (!page.ok()) return std::move(page).err();
  return std::move(page->events);
}

result<storage::aggregate_page> jetstream_event_log::read_page(std::string_view tenant, std::string_view type,
                                                               std::string_view id, storage::version_t after,
                                                               storage::position_t after_position,
                                                               std::size_t limit) {
  // Tails longer than this many events are streamed by an ordered consumer;
  // shorter ones cost fewer round trips as direct gets.
  constexpr std::uint64_t k_direct_tail = 8;
  storage::aggregate_page out;
  out.next_after_position = after_position;
  if (limit == 0 || after == UINT64_MAX) return out;
  const auto subject = aggregate_subject(tenant, type, id);
  // The aggregate's last commit bounds the read (one direct get).
  auto last_msg = _impl->direct_get(0, nullptr, subject.c_str());
  if (!last_msg.ok()) return std::move(last_msg).err();
  msg_guard lg{*last_msg};
  if (lg.m == nullptr) return out;
  auto last = _impl->decode(lg.m);
  if (!last.ok()) return std::move(last).err();
  const std::uint64_t last_seq = last->position;
  const version_t last_version = last->commit.first_version + last->commit.events.size() - 1;
  if (last_version <= after) return out;

  // Takes one commit's events after `after` into the page; false when full.
  const auto take = [&](positioned_commit& pc) {
    const std::size_t n = pc.commit.events.size();
    std::size_t taken = 0;
    for (auto& e : pc.commit.events) {
      if (e.version > after) {
        if (out.events.size() == limit) break;
        out.events.push_back(std::move(e));
      }
      ++taken;
    }
    // A commit cut by the limit is read again by the next page.
    out.next_after_position = taken == n ? pc.position : pc.position - 1;
    return out.events.size() < limit;
  };
  // A hint that skips commits (a purged or recreated stream under an old
  // snapshot) is dropped: read from the start rather than answer with a hole.
  std::uint64_t from = after_position == UINT64_MAX ? 1 : after_position + 1;
  const auto hint_skipped = [&](const positioned_commit& first) {
    if (from == 1 || first.commit.first_version <= after + 1) return false;
    ESFLOW_WARN("nats", "read hint seq={} skipped versions of {}: reading from the start", from - 1,
                aggregate_ctx(tenant, type, id));
    from = 1;
    out.next_after_position = 0;
    return true;
  };
  if (from > last_seq) from = 1;  // the hint lies beyond the last commit

  if (last_version - after > k_direct_tail) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool first = true, restart = false;
      auto ok = _impl->consume_range(subject, from, last_seq, [&](positioned_commit& pc) {
        if (std::exchange(first, false) && hint_skipped(pc)) {
          restart = true;
          return false;
        }
        return take(pc);
      });
      if (!ok.ok()) return std::move(ok).err();
      if (!restart) break;
    }
    return out;
  }
  // Bounded: one direct get per commit up to the last one; sequences only grow.
  bool first = true;
  std::uint64_t seq = from;
  while (out.events.size() < limit && seq <= last_seq) {
    auto m = _impl->direct_get(seq, subject.c_str(), nullptr);
    if (!m.ok()) return std::move(m).err();
    msg_guard g{*m};
    if (g.m == nullptr) break;
    auto pc = _impl->decode(g.m);
    if (!pc.ok()) return std::move(pc).err();
    if (first && hint_skipped(pc.value())) {
      seq = 1;
      first = false;
      continue;
    }
    first = false;
    seq = pc->position + 1;
    if (!take(pc.value())) break;
  }
  return out;
}

result<bool> jetstream_event_log::knows_command(std::string_view tenant, std::string_view command_id) {
  auto known = _impl->load_dedupe(tenant, command_id);
  if (!known.ok()) return std::move(known).err();
  return known.value().has_value();
}

result<storage::version_t> jetstream_event_log::current_version(std::string_view tenant,
                                                                std::string_view type, std::string_view id) {
  auto li = _impl->load_last(aggregate_subject(tenant, type, id));
  if (!li.ok()) return std::move(li).err();
  return li->version;
}

result<std::optional<storage::append_result>> jetstream_event_log::find_command(std::string_view tenant,
                                                                                std::string_view command_id) {
  using out_t = std::optional<storage::append_result>;
  auto known = _impl->load_dedupe(tenant, command_id);
  if (!known.ok()) return std::move(known).err();
  if (!*known) return out_t{};
  auto orig = _impl->original_at((*known)->position, tenant, command_id);
  if (!orig.ok()) return std::move(orig).err();
  if (!*orig) return out_t{};
  return out_t{std::move((*orig)->first)};
}

result<std::vector<storage::positioned_commit>> jetstream_event_log::read_from(storage::position_t after,
                                                                               std::size_t max) {
  std::vector<storage::positioned_commit> out;
  if (max == 0 || after == UINT64_MAX) return out;
  const std::string filter(aggregate_filter);
  // A follower far behind (a projection catching up or rebuilding) streams
  // its page through one ordered consumer from after+1: one round trip to
  // create it, then the server pushes. Close to the head, a few direct gets
  // cost less than creating a consumer.
  auto head = last_position();
  if (!head.ok()) return std::move(head).err();
  if (head.value() <= after) return out;
  if (head.value() - after > k_direct_read_from) {
    auto ok = _impl->consume_range(filter, after + 1, head.value(), [&](storage::positioned_commit& pc) {
      out.push_back(std::move(pc));
      return out.size() < max;
    });
    if (!ok.ok()) return std::move(ok).err();
    return out;
  }
  std::uint64_t seq = after + 1;
  while (out.size() < max) {
    auto m = _impl->direct_get(seq, filter.c_str(), nullptr);
    if (!m.ok()) return std::move(m).err();
    msg_guard g{*m};
    if (g.m == nullptr) break;
    auto pc = _impl->decode(g.m);
    if (!pc.ok()) return std::move(pc).err();
    seq = pc->position + 1;
    out.push_back(std::move(pc).value());
  }
  return out;
}

result<storage::position_t> jetstream_event_log::last_position() {
  const std::string filter(aggregate_filter);
  auto m = _impl->direct_get(0, nullptr, filter.c_str());
  if (!m.ok()) return std::move(m).err();
  msg_guard g{*m};
  return g.m == nullptr ? storage::position_t{0} : natsMsg_GetSequence(g.m);
}

status jetstream_event_log::close() {
  if (_impl->_listener != 0) {
    _impl->_conn.remove_disconnect_listener(_impl->_listener);
    _impl->_listener = 0;
  }
  {
    std::lock_guard lock(_impl->_mu);
    _impl->_closing = true;
  }
  _impl->_cv.notify_one();
  if (_impl->_thread.joinable()) {
    if (_impl->_thread.get_id() == std::this_thread::get_id()) {
      return error::make(errc::internal, "close() called from an append completion");
    }
    _impl->_thread.join();
  }
  return {};
}

jetstream_stats jetstream_event_log::stats() const {
  const auto& s = _impl->_stats;
  jetstream_stats out;
  out.appends = s.appends.load();
  out.publishes = s.publishes.load();
  out.commits = s.commits.load();
  out.local_duplicates = s.local_duplicates.load();
  out.server_duplicates = s.server_duplicates.load();
  out.conflicts = s.conflicts.load();
  out.unavailable = s.unavailable.load();
  out.version_loads = s.version_loads.load();
  out.direct_gets = s.direct_gets.load();
  out.tail_consumers = s.tail_consumers.load();
  out.ack_batches = s.ack_batches.load();
  out.in_flight = s.in_flight.load();
  out.ack_latency = s.ack_latency.read();
  return out;
}

const jetstream_options& jetstream_event_log::options() const { return _impl->_options; }

}  // namespace esflow::storage::jetstream
