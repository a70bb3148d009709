#include "storage/jetstream/jetstream_workflow_stream.h"

#include "common/log.h"
#include "storage/jetstream/async_publish.h"
#include "transport/nats/headers.h"

#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace esflow::storage::jetstream {

using namespace esflow::nats;  // NOLINT(google-build-using-namespace): this backend speaks NATS throughout

namespace {

struct msg_guard {
  natsMsg* m = nullptr;
  ~msg_guard() {
    if (m != nullptr) natsMsg_Destroy(m);
  }
};

struct info_guard {
  jsStreamInfo* i = nullptr;
  ~info_guard() {
    if (i != nullptr) jsStreamInfo_Destroy(i);
  }
};

result<stream_spec> spec_of(const std::string& name, const streams_config& c) {
  if (name == workflow_commands_stream) return workflow_commands_spec(c);
  if (name == workflow_events_stream) return workflow_events_spec(c);
  return error::make(errc::invalid_config, "unknown workflow stream '" + name + "'",
                     "expected WORKFLOW_COMMANDS or WORKFLOW_EVENTS");
}

// A stored message: Nats-Msg-Id becomes msg_id, every other header is kept.
result<stream_message> decode(natsMsg* msg) {
  stream_message m;
  m.position = natsMsg_GetSequence(msg);
  if (const char* s = natsMsg_GetSubject(msg); s != nullptr) m.subject = s;
  m.body.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  const char** keys = nullptr;
  int count = 0;
  auto s = natsMsgHeader_Keys(msg, &keys, &count);
  if (s == NATS_NOT_FOUND) return m;
  if (s != NATS_OK) return nats_error(s, "reading headers", "seq=" + std::to_string(m.position));
  for (int i = 0; i < count; ++i) {
    const char** values = nullptr;
    int n = 0;
    if (natsMsgHeader_Values(msg, keys[i], &values, &n) != NATS_OK) continue;
    for (int j = 0; j < n; ++j) {
      if (std::string_view(keys[i]) == header::msg_id)
        m.msg_id = values[j];
      else
        m.headers.emplace_back(keys[i], values[j]);
    }
    std::free(static_cast<void*>(values));
  }
  std::free(static_cast<void*>(keys));
  return m;
}

}  // namespace

struct jetstream_workflow_stream::impl {
  impl(nats_connection& c, std::string n, jetstream_stream_options o)
      : _conn(c), _name(std::move(n)), _options(std::move(o)) {}

  nats_connection& _conn;
  std::string _name;
  jetstream_stream_options _options;
  jsCtx* _js = nullptr;

  std::mutex _mu;
  // Publishes awaiting their ack, by their natsMsg (alive in nats.c until
  // the ack handler destroys it); guarded by _mu.
  std::unordered_map<const void*, publish_callback> _in_flight;
  bool _closing = false;  // guarded by _mu

  std::string ctx() const { return "stream=" + _name; }

  // The callback of msg, removed; null when close() already completed it.
  publish_callback take(const void* msg) {
    std::lock_guard lock(_mu);
    auto it = _in_flight.find(msg);
    if (it == _in_flight.end()) return nullptr;
    auto done = std::move(it->second);
    _in_flight.erase(it);
    return done;
  }

  // nats.c's ack-handler thread: never blocks.
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<impl*>(closure);
    auto done = self->take(msg);
    std::string subject;
    if (const char* s = natsMsg_GetSubject(msg); s != nullptr) subject = s;
    natsMsg_Destroy(msg);
    if (!done) return;  // completed by close()
    if (pae != nullptr) {
      std::string text = pae->ErrText != nullptr ? pae->ErrText : "";
      return done(nats_error(pae->Err == NATS_OK ? NATS_ERR : pae->Err, "publish ack",
                             self->ctx() + " subject=" + subject +
                                 " code=" + std::to_string(static_cast<int>(pae->ErrCode)) + " " + text));
    }
    if (pa == nullptr) return done(error::make(errc::unavailable, "ack without result", self->ctx()));
    done(publish_ack{pa->Sequence, pa->Duplicate});
  }

  result<jsStreamInfo*> stream_info() {
    if (auto s = _conn.check(); !s.ok()) return std::move(s).err();
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetStreamInfo(&info, _js, _name.c_str(), nullptr, &code);
    if (s != NATS_OK || info == nullptr) return nats_error(s, "reading stream info", ctx());
    return info;
  }
};

jetstream_workflow_stream::jetstream_workflow_stream(std::unique_ptr<impl> p) : _impl(std::move(p)) {}

jetstream_workflow_stream::~jetstream_workflow_stream() {
  esflow::ignore(close());
  if (_impl->_js != nullptr) jsCtx_Destroy(_impl->_js);
}

result<std::unique_ptr<jetstream_workflow_stream>> jetstream_workflow_stream::open(
    nats_connection& connection, std::string name, jetstream_stream_options options) {
  auto spec = spec_of(name, options.streams);
  if (!spec.ok()) return std::move(spec).err();
  auto p = std::make_unique<impl>(connection, std::move(name), std::move(options));
  // Our own bound (max_pending) refuses first: nats.c's stall never blocks a caller.
  auto js =
      async_publish_context(connection, p->_options.request_timeout,
                            static_cast<std::int64_t>(p->_options.max_pending) + 1, &impl::on_ack, p.get());
  if (!js.ok()) return std::move(js).err();
  p->_js = *js;
  auto* raw = p.get();
  std::unique_ptr<jetstream_workflow_stream> stream(new jetstream_workflow_stream(std::move(p)));
  if (raw->_options.ensure_stream) {
    auto r = ensure_stream(raw->_js, spec.value());
    if (!r.ok()) return std::move(r).err();
  }
  ESFLOW_INFO("nats", "jetstream workflow stream {} open", raw->_name);
  return stream;
}

const std::string& jetstream_workflow_stream::name() const { return _impl->_name; }

void jetstream_workflow_stream::publish(publish_request request, publish_callback done) {
  auto& im = *_impl;
  if (auto s = check_publish(im._name, request); !s.ok()) return done(std::move(s).err());
  if (auto s = im._conn.check(); !s.ok()) return done(std::move(s).err());
  const std::string ctx = im.ctx() + " subject=" + request.subject + " msg_id=" + request.msg_id;
  msg_guard g;
  auto s = natsMsg_Create(&g.m, request.subject.c_str(), nullptr, request.body.data(),
                          static_cast<int>(request.body.size()));
  for (std::size_t i = 0; s == NATS_OK && i < request.headers.size(); ++i)
    s = natsMsgHeader_Add(g.m, request.headers[i].first.c_str(), request.headers[i].second.c_str());
  if (s != NATS_OK) return done(nats_error(s, "creating message", ctx));
  {
    std::unique_lock lock(im._mu);
    if (im._closing) {
      lock.unlock();
      return done(error::make(errc::unavailable, "workflow stream is closed", ctx));
    }
    if (im._in_flight.size() >= im._options.max_pending) {
      lock.unlock();
      return done(error::make(errc::unavailable, "too many publishes in flight",
                              ctx + " max_pending=" + std::to_string(im._options.max_pending)));
    }
    im._in_flight.emplace(g.m, std::move(done));
  }
  const void* key = g.m;
  jsPubOptions o;
  jsPubOptions_Init(&o);
  o.MaxWait = im._options.publish_timeout.count();
  o.MsgId = request.msg_id.c_str();
  s = js_PublishMsgAsync(im._js, &g.m, &o);  // on success nats.c owns the message (g.m = nullptr)
  if (s != NATS_OK) {
    if (auto cb = im.take(key)) cb(nats_error(s, "publishing", ctx));
  }
}

result<std::vector<stream_message>> jetstream_workflow_stream::read_from(position_t after, std::size_t max) {
  std::vector<stream_message> out;
  if (max == 0 || after == UINT64_MAX) return out;
  auto info = _impl->stream_info();
  if (!info.ok()) return std::move(info).err();
  info_guard ig{info.value()};
  const std::uint64_t first = ig.i->State.FirstSeq, last = ig.i->State.LastSeq;
  std::uint64_t seq = std::max(after + 1, first);
  std::uint64_t probes = 0;
  // Bounded: sequences only up to the last one, at most max_probes of them.
  for (; seq <= last && out.size() < max && probes < _impl->_options.max_probes; ++seq, ++probes) {
    natsMsg* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    auto s = js_GetMsg(&raw, _impl->_js, _impl->_name.c_str(), seq, nullptr, &code);
    if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) continue;  // deleted (acked from a work queue)
    if (s != NATS_OK) return nats_error(s, "getting message", _impl->ctx() + " seq=" + std::to_string(seq));
    msg_guard g{raw};
    auto m = decode(g.m);
    if (!m.ok()) return std::move(m).err();
    if (m->position == 0) m->position = seq;
    out.push_back(std::move(m).value());
  }
  if (out.empty() && seq <= last) {
    return error::make(errc::unavailable, "no message within max_probes sequences",
                       _impl->ctx() + " from=" + std::to_string(std::max(after + 1, first)) +
                           " to=" + std::to_string(seq - 1));
  }
  return out;
}

result<position_t> jetstream_workflow_stream::last_position() {
  auto info = _impl->stream_info();
  if (!info.ok()) return std::move(info).err();
  info_guard ig{info.value()};
  return position_t{ig.i->State.LastSeq};
}

status jetstream_workflow_stream::close() {
  auto& im = *_impl;
  {
    std::lock_guard lock(im._mu);
    if (im._closing && im._in_flight.empty()) return {};
    im._closing = true;
  }
  jsPubOptions o;
  jsPubOptions_Init(&o);
  o.MaxWait = im._options.publish_timeout.count();
  if (im._js != nullptr) js_PublishAsyncComplete(im._js, &o);  // a timeout leaves the rest to below
  std::unordered_map<const void*, publish_callback> rest;
  {
    std::lock_guard lock(im._mu);
    rest.swap(im._in_flight);
  }
  for (auto& [msg, done] : rest)
    done(error::make(errc::unavailable, "workflow stream closed before the ack", im.ctx()));
  return {};
}

}  // namespace esflow::storage::jetstream
