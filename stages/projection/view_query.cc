#include "stages/projection/view_query.h"

#include "common/sha256.h"
#include "query/eval.h"
#include "query/index_probe.h"
#include "query/parser.h"
#include "schemas/json_encode.h"
#include "stages/projection/projection_metrics.h"
#include "stages/projection/projection_service.h"
#include "stages/projection/row_index.h"
#include "storage/index_value.h"
#include "storage/keys.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace esflow::projection {
namespace {

constexpr std::size_t k_default_limit = 100;
constexpr std::size_t k_max_limit = 1000;
constexpr std::uint64_t k_max_wait_ms = 5000;
constexpr std::size_t k_chunk = 256;

error bad(const std::string& message) { return error::make(errc::invalid_query, message); }

std::optional<std::uint64_t> parse_u64(const std::string& text) {
  std::uint64_t v = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || p != end) return std::nullopt;
  return v;
}

enum class mode : char { key = 'k', index = 'i', sorted = 's' };

struct order {
  std::string field;  // empty: key order
  bool desc = false;
};

struct range {
  std::string from, to;  // encoded values; to empty: no bound
};

struct position_in_order {
  std::string value;  // encoded sort value (empty in key mode)
  std::string key;
  std::uint64_t view_id = 0;  // index and sorted order: the snapshot the pages read (cursor_views)
};

std::string to_hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

// The cursor: "c1" + mode + hex(8 bytes of the query's digest + value + key).
class cursor_codec {
 public:
  cursor_codec(const query_request& r, const std::string& filter, const order& o, mode m) : _mode(m) {
    std::string bound;
    for (const auto& part : {r.tenant, r.view, filter, o.field, std::string(o.desc ? "desc" : "asc")}) {
      storage::keys::put_str(bound, part);
    }
    _digest = sha256_digest::of(bound).to_hex().substr(0, 16);
  }

  std::string encode(const position_in_order& at) const {
    std::string payload;
    storage::keys::put_str(payload, at.value);
    storage::keys::put_str(payload, at.key);
    storage::keys::put_u64_be(payload, at.view_id);
    return std::string("c1") + static_cast<char>(_mode) + _digest + to_hex(payload);
  }

  result<position_in_order> decode(const std::string& text) const {
    const auto header = 3 + _digest.size();
    if (text.size() < header || text.compare(0, 2, "c1") != 0 || text.size() > 4096)
      return bad("cursor: not a cursor of this node (send the next_cursor of a previous answer as is)");
    if (text[2] != static_cast<char>(_mode) || text.compare(3, _digest.size(), _digest) != 0)
      return bad(
          "cursor: it belongs to another query (the tenant, view, filter and order_by must be the same)");
    auto payload = from_hex(std::string_view(text).substr(header));
    position_in_order at;
    std::size_t pos = 0;
    std::string_view value, key;
    if (!payload || !storage::keys::get_str(*payload, pos, value) ||
        !storage::keys::get_str(*payload, pos, key) || pos + 8 != payload->size())
      return bad("cursor: malformed");
    at.value.assign(value);
    at.key.assign(key);
    at.view_id = storage::keys::get_u64_be(std::string_view(*payload).substr(pos));
    return at;
  }

 private:
  mode _mode;
  std::string _digest;
};

std::string encode_literal(const query::literal& lit) {
  if (const auto* b = std::get_if<bool>(&lit)) return storage::index_value::of_bool(*b);
  if (const auto* i = std::get_if<std::int64_t>(&lit))
    return storage::index_value::of_number(static_cast<double>(*i));
  if (const auto* d = std::get_if<double>(&lit)) return storage::index_value::of_number(*d);
  if (const auto* s = std::get_if<std::string>(&lit)) return storage::index_value::of_string(*s);
  return storage::index_value::of_absent();
}

// The index ranges a probe reads; bounds are inclusive so that number
// rounding adds candidates but loses none (storage/index_value.h).
std::vector<range> ranges_of(const query::index_probe& p) {
  using storage::keys::prefix_successor;
  std::vector<range> out;
  if (p.k == query::index_probe::kind::in) {
    std::set<std::string> values;
    for (const auto& lit : p.literals) values.insert(encode_literal(lit));
    for (const auto& v : values) out.push_back({v, prefix_successor(v)});
    return out;
  }
  const auto v = encode_literal(p.literals.front());
  const auto t = static_cast<storage::index_value::tag>(static_cast<unsigned char>(v[0]));
  switch (p.op) {
    case query::cmp_op::eq:
      out.push_back({v, prefix_successor(v)});
      break;
    case query::cmp_op::gt:
    case query::cmp_op::ge:
      out.push_back({v, storage::index_value::type_end(t)});
      break;
    case query::cmp_op::lt:
    case query::cmp_op::le:
      out.push_back({storage::index_value::type_begin(t), prefix_successor(v)});
      break;
    case query::cmp_op::ne:
      break;  // never a probe
  }
  return out;
}

class runner {
 public:
  runner(projection_service& s, const view_config& v, const query_request& r, const query_limits& l)
      : _service(s), _view(v), _req(r), _limits(l), _deadline(std::chrono::steady_clock::now() + l.budget) {}

  result<query_answer> run() {
    if (auto st = parse(); !st.ok()) return std::move(st).err();
    if (auto st = wait(); !st.ok()) return std::move(st).err();
    _answer.position = _service.view_position(_view);
    _store_view = _service.live_store(_view);
    if (auto st = pin(); !st.ok()) return std::move(st).err();
    status st;
    switch (_mode) {
      case mode::key:
        st = run_key();
        break;
      case mode::index:
        st = run_index();
        break;
      case mode::sorted:
        st = run_sorted();
        break;
    }
    if (!st.ok()) return std::move(st).err();
    _answer.scanned = _scanned;
    return std::move(_answer);
  }

 private:
  status parse() {
    if (_req.limit) {
      auto n = parse_u64(*_req.limit);
      if (!n || *n == 0)
        return bad("limit: must be an integer >= 1 (at most " + std::to_string(k_max_limit) + ")");
      _limit = static_cast<std::size_t>(std::min<std::uint64_t>(*n, k_max_limit));
    }
    if (_req.min_position) {
      auto n = parse_u64(*_req.min_position);
      if (!n) return bad("min_position: must be a log position (an integer >= 0)");
      _min_position = *n;
    }
    if (_req.wait_ms) {
      auto n = parse_u64(*_req.wait_ms);
      if (!n) return bad("wait_ms: must be an integer >= 0 (at most 5000)");
      _wait_ms = std::min(*n, k_max_wait_ms);
    }
    if (_req.filter && !_req.filter->empty()) {
      auto p = query::parse_filter(*_req.filter);
      if (!p.ok()) return std::move(p).err();
      _plan = std::move(p).value();
    }
    if (_req.order_by) {
      std::string text = *_req.order_by;
      const auto colon = text.rfind(':');
      if (colon != std::string::npos) {
        const auto dir = text.substr(colon + 1);
        if (dir != "asc" && dir != "desc")
          return bad("order_by: direction must be asc or desc, got '" + dir + "'");
        _order.desc = dir == "desc";
        text.resize(colon);
      }
      if (!valid_path(text))
        return bad("order_by: '" + text + "' is not a field path (like balance or owner.name)");
      _order.field = text == "key" && !_order.desc ? std::string() : text;
    }
    const std::set<std::string> indexed(_view.index.begin(), _view.index.end());
    std::optional<query::index_probe> probe;
    if (_plan) probe = query::index_candidate(*_plan, indexed);
    if (!_req.order_by || (_order.field.empty() && !_order.desc)) {
      if (probe && !_req.order_by) {
        _mode = mode::index;
        _index_field = probe->field;
        _ranges = ranges_of(*probe);
      } else {
        _mode = mode::key;
      }
    } else if (!_order.desc && indexed.count(_order.field) != 0) {
      _mode = mode::index;
      _index_field = _order.field;
      if (probe && probe->field == _order.field)
        _ranges = ranges_of(*probe);
      else
        _ranges = {range{}};
    } else {
      _mode = mode::sorted;
    }
    _codec.emplace(_req, _req.filter.value_or(""), _order, _mode);
    if (_req.cursor && !_req.cursor->empty()) {
      auto at = _codec->decode(*_req.cursor);
      if (!at.ok()) return std::move(at).err();
      _after = std::move(at).value();
    }
    return {};
  }

  static bool valid_path(const std::string& p) {
    if (p.empty() || p.size() > 256) return false;
    bool start = true;
    for (char c : p) {
      if (c == '.') {
        if (start) return false;
        start = true;
        continue;
      }
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!start && c >= '0' && c <= '9');
      if (!ok) return false;
      start = false;
    }
    return !start;
  }

  // Index and sorted order page through one snapshot: taken by the first
  // page, found again by the cursor's id (stages/projection/cursor_views.h).
  status pin() {
    if (_mode == mode::key) return {};
    if (_after) {
      _at = _service.cursors().find(_after->view_id);
      if (!_at)
        return bad(
            "cursor: expired (a query ordered by a field pages through a snapshot kept 60 s); start the "
            "query again without a cursor");
      _view_id = _after->view_id;
      return {};
    }
    _at = _service.store().snapshot();
    if (!_at) return error::make(errc::unavailable, "the node store is closed");
    _view_id = _service.cursors().keep(_at);
    return {};
  }

  status wait() {
    if (!_min_position) return {};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(_wait_ms);
    if (_service.wait_for_position(_view, *_min_position, deadline)) return {};
    return error::make(errc::unavailable, "view '" + _view.name + "' has processed the log up to position " +
                                              std::to_string(_service.view_position(_view)) +
                                              ", not yet min_position " + std::to_string(*_min_position) +
                                              " (retry, or wait longer with wait_ms <= 5000)");
  }

  bool over_budget() const {
    return _scanned >= _limits.max_scan || std::chrono::steady_clock::now() >= _deadline;
  }

  // The row as stored (nullopt: gone or deleted).
  result<std::optional<row_value>> load(const std::string& key) {
    auto v = _service.store().readmodels().get(_req.tenant, _store_view, key, _at.get());
    if (!v.ok()) return std::move(v).err();
    if (!v.value()) return std::optional<row_value>();
    auto r = decode_row(**v);
    if (!r || r->deleted) return std::optional<row_value>();
    return std::optional(std::move(*r));
  }

  bool keep(const std::string& key, const row_value& r, nlohmann::json* parsed = nullptr) {
    if (!_plan) return true;
    nlohmann::json local;
    auto& row = parsed ? *parsed : local;
    if (!parsed) row = nlohmann::json::parse(r.json, nullptr, false);
    return query::matches(*_plan, key, r.version, row);
  }

  void add(const std::string& key, row_value r) {
    _answer.rows.push_back({key, r.version, std::move(r.json)});
  }

  status run_key() {
    std::string after = _after ? _after->key : std::string();
    for (;;) {
      const auto want = std::min(k_chunk, _limits.max_scan - std::min(_limits.max_scan, _scanned));
      if (want == 0 || std::chrono::steady_clock::now() >= _deadline) {
        _answer.next_cursor = _codec->encode({{}, after});
        return {};
      }
      auto page = _service.store().readmodels().scan(_req.tenant, _store_view, after, want);
      if (!page.ok()) return std::move(page).err();
      for (auto& kv : page.value()) {
        ++_scanned;
        after = kv.row_key;
        auto r = decode_row(kv.value);
        if (!r || r->deleted || !keep(kv.row_key, *r)) continue;
        add(kv.row_key, std::move(*r));
        if (_answer.rows.size() == _limit) {
          _answer.next_cursor = _codec->encode({{}, after});
          return {};
        }
      }
      if (page->size() < want) return {};
    }
  }

  status run_index() {
    position_in_order at = _after.value_or(position_in_order{});
    auto& rm = _service.store().readmodels();
    for (const auto& rg : _ranges) {
      for (;;) {
        // A page as large as the rows still wanted (and a few for the filter): its rows are read in one
        // batch.
        const auto wanted = _limit - _answer.rows.size() + 8;
        const auto want =
            std::min({k_chunk, wanted, _limits.max_scan - std::min(_limits.max_scan, _scanned)});
        if (want == 0 || std::chrono::steady_clock::now() >= _deadline) {
          _answer.next_cursor = _codec->encode({at.value, at.key, _view_id});
          return {};
        }
        auto hits = rm.scan_index(_req.tenant, _store_view, _index_field, rg.from, rg.to, at.value, at.key,
                                  want, _at.get());
        if (!hits.ok()) return std::move(hits).err();
        // Covering entries carry their row; older ones (empty) are looked up in one batch.
        std::vector<std::string> keys;
        for (const auto& h : hits.value()) {
          if (h.row.empty()) keys.push_back(h.row_key);
        }
        std::vector<std::optional<std::string>> looked_up;
        if (!keys.empty()) {
          auto values = rm.get_many(_req.tenant, _store_view, keys, _at.get());
          if (!values.ok()) return std::move(values).err();
          looked_up = std::move(values).value();
        }
        std::size_t next_lookup = 0;
        for (auto& h : hits.value()) {
          ++_scanned;
          at = {h.value, h.row_key};
          std::optional<std::string> value;
          if (!h.row.empty()) {
            value = std::move(h.row);
          } else {
            value = std::move(looked_up[next_lookup++]);
          }
          if (!value) continue;
          auto r = decode_row(*value);
          if (!r || r->deleted) continue;
          auto row = nlohmann::json::parse(r->json, nullptr, false);
          // The row changed after the entry was read: its current entry is elsewhere in the order.
          if (index_entry(row, _index_field) != h.value) continue;
          if (!keep(h.row_key, *r, &row)) continue;
          add(h.row_key, std::move(*r));
          if (_answer.rows.size() == _limit) {
            _answer.next_cursor = _codec->encode({at.value, at.key, _view_id});
            return {};
          }
        }
        if (hits->size() < want) break;
      }
    }
    return {};
  }

  std::string sort_value(const std::string& key, const row_value& r, const nlohmann::json& row) const {
    if (_order.field == "key") return storage::index_value::of_string(key);
    if (_order.field == "version") return storage::index_value::of_number(static_cast<double>(r.version));
    return index_entry(row, _order.field);
  }

  status run_sorted() {
    struct candidate {
      std::string value, key;
      row_value row;
    };
    std::vector<candidate> found;
    std::string after;
    for (;;) {
      if (over_budget())
        return bad(
            "order_by " + _order.field + (_order.desc ? ":desc" : "") +
            " sorts in memory and the view has more than " + std::to_string(_limits.max_scan) +
            " rows to read for it: add the field to the view's index (ascending order streams) or narrow the "
            "filter with an indexed field");
      auto page = _service.store().readmodels().scan(_req.tenant, _store_view, after, k_chunk, _at.get());
      if (!page.ok()) return std::move(page).err();
      for (auto& kv : page.value()) {
        ++_scanned;
        after = kv.row_key;
        auto r = decode_row(kv.value);
        if (!r || r->deleted) continue;
        auto row = nlohmann::json::parse(r->json, nullptr, false);
        if (!keep(kv.row_key, *r, &row)) continue;
        found.push_back({sort_value(kv.row_key, *r, row), kv.row_key, std::move(*r)});
        if (found.size() > _limits.max_sort_rows)
          return bad("order_by " + _order.field + " sorts in memory and more than " +
                     std::to_string(_limits.max_sort_rows) +
                     " rows match: add the field to the view's index or narrow the filter");
      }
      if (page->size() < k_chunk) break;
    }
    auto less = [&](const candidate& a, const candidate& b) {
      return _order.desc ? std::tie(b.value, b.key) < std::tie(a.value, a.key)
                         : std::tie(a.value, a.key) < std::tie(b.value, b.key);
    };
    std::sort(found.begin(), found.end(), less);
    std::size_t i = 0;
    if (_after) {
      candidate probe{_after->value, _after->key, {}};
      i = static_cast<std::size_t>(std::upper_bound(found.begin(), found.end(), probe, less) - found.begin());
    }
    for (; i < found.size(); ++i) {
      add(found[i].key, std::move(found[i].row));
      if (_answer.rows.size() == _limit) {
        if (i + 1 < found.size())
          _answer.next_cursor = _codec->encode({found[i].value, found[i].key, _view_id});
        return {};
      }
    }
    return {};
  }

  projection_service& _service;
  const view_config& _view;
  const query_request& _req;
  const query_limits& _limits;
  std::chrono::steady_clock::time_point _deadline;
  std::size_t _limit = k_default_limit;
  std::optional<std::uint64_t> _min_position;
  std::uint64_t _wait_ms = 0;
  std::optional<query::plan> _plan;
  order _order;
  mode _mode = mode::key;
  std::string _index_field;
  std::vector<range> _ranges;
  std::optional<cursor_codec> _codec;
  std::optional<position_in_order> _after;
  std::size_t _scanned = 0;
  std::string _store_view;                  // the live generation's rows
  std::shared_ptr<storage::read_view> _at;  // index and sorted order: the snapshot every page reads
  std::uint64_t _view_id = 0;
  query_answer _answer;
};

}  // namespace

result<query_answer> run_query(projection_service& service, const query_request& request,
                               const query_limits& limits) {
  const auto* view = service.find_view(request.view);
  if (view == nullptr) {
    std::string names;
    for (const auto& v : service.views()) names += (names.empty() ? "" : ", ") + v.name;
    return bad("unknown view '" + request.view + "' (this node serves: " + names + ")");
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto answer = runner(service, *view, request, limits).run();
  service.metrics().query(view->name,
                          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                          answer.ok() ? answer->scanned : 0);
  return answer;
}

std::string answer_json(const query_answer& a) {
  std::string out = "{\"rows\":[";
  bool first = true;
  for (const auto& r : a.rows) {
    if (!first) out += ',';
    first = false;
    out += "{\"key\":";
    schemas::append_json_string(out, r.key);
    out += ",\"version\":" + std::to_string(r.version) + ",\"row\":";
    out += r.row_json;
    out += '}';
  }
  out += "],\"next_cursor\":";
  if (a.next_cursor)
    schemas::append_json_string(out, *a.next_cursor);
  else
    out += "null";
  out += ",\"position\":" + std::to_string(a.position) + "}";
  return out;
}

}  // namespace esflow::projection
