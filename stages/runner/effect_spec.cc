#include "stages/runner/effect_spec.h"

#include "graph/did_you_mean.h"
#include "graph/node_kind_descriptor.h"
#include "graph/params.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace esflow::runner {
namespace {

bool is_valid_url(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else {
    return false;
  }
  if (rest.empty() || rest.front() == '/' || rest.front() == ':' || url.size() > 2048) return false;
  // No whitespace or control characters anywhere (they would split a request line).
  return std::none_of(url.begin(), url.end(),
                      [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; });
}

std::string trim(std::string s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.back())) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && space(s[i])) ++i;
  return s.substr(i);
}

// The secret's trimmed content, or why it cannot be used (never its content).
result<std::string> read_secret(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return error::make(errc::invalid_config, "secret_file '" + path + "' does not exist or is not a file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec)
    return error::make(errc::invalid_config, "secret_file '" + path + "' is unreadable: " + ec.message());
  if (size > k_max_secret_bytes)
    return error::make(errc::invalid_config, "secret_file '" + path + "' is larger than 64KiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) return error::make(errc::invalid_config, "secret_file '" + path + "' is unreadable");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return error::make(errc::invalid_config, "secret_file '" + path + "' is unreadable");
  auto secret = trim(text.str());
  if (secret.empty()) return error::make(errc::invalid_config, "secret_file '" + path + "' is empty");
  // It goes into an HTTP header: one line of visible characters.
  if (std::any_of(secret.begin(), secret.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
    return error::make(
        errc::invalid_config,
        "secret_file '" + path + "' must hold one line (a bearer token) without control characters");
  return secret;
}

}  // namespace

std::string_view to_string(provider_kind kind) noexcept {
  switch (kind) {
    case provider_kind::http:
      return "http";
    case provider_kind::log:
      return "log";
  }
  return "?";
}

bool is_valid_effect_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '_'; });
}

result<std::vector<effect_config>> parse_effects(const YAML::Node& section, const std::string& file,
                                                 const std::string& base_dir) {
  std::vector<std::string> problems;
  std::vector<effect_config> out;
  auto fail = [&](const YAML::Node& n, const std::string& what) {
    problems.push_back(graph::yaml_where(file, n) + ": " + what);
  };
  if (!section || section.IsNull()) return out;
  if (!section.IsMap()) {
    fail(section, "'effects' must be a mapping of effect name to { provider, url, timeout, retries, ... }");
  } else {
    static const std::vector<std::string> known = {"provider", "url",     "timeout",    "retries",
                                                   "backoff",  "breaker", "secret_file"};
    static const std::vector<std::string> backoff_keys = {"min", "max"};
    static const std::vector<std::string> breaker_keys = {"failures", "open_for"};
    for (const auto& item : section) {
      const auto name = item.first.Scalar();
      const auto owner = "effects: '" + name + "': ";
      if (!item.first.IsScalar() || !is_valid_effect_name(name)) {
        fail(item.first, owner + "an effect name must match [A-Za-z][A-Za-z0-9_]{0,63}");
        continue;
      }
      const auto& body = item.second;
      if (!body.IsMap()) {
        fail(body,
             owner + "must be a mapping { provider: http | log, url: ..., timeout: 5s, retries: 3, ... }");
        continue;
      }
      effect_config e;
      e.name = name;
      bool ok = true;
      bool has_provider = false;
      auto bad = [&](const YAML::Node& n, const std::string& what) {
        fail(n, owner + what);
        ok = false;
      };
      // A duration in [lo, hi] milliseconds; false when it is not.
      auto duration = [&](const YAML::Node& n, const std::string& key, std::chrono::milliseconds lo,
                          std::chrono::milliseconds hi, std::chrono::milliseconds& into) {
        const auto ms = n.IsScalar() ? graph::parse_duration_ms(n.Scalar()) : std::nullopt;
        if (!ms || *ms < lo.count() || *ms > hi.count()) {
          bad(n, "'" + key + "' must be a duration from " + std::to_string(lo.count()) + "ms to " +
                     std::to_string(hi.count()) + "ms (e.g. 250ms, 2s), got '" +
                     (n.IsScalar() ? n.Scalar() : "") + "'");
          return;
        }
        into = std::chrono::milliseconds(*ms);
      };
      auto integer = [&](const YAML::Node& n, const std::string& key, int lo, int hi, int& into) {
        const auto v = n.IsScalar() ? graph::parse_integer(n.Scalar()) : std::nullopt;
        if (!v || *v < lo || *v > hi) {
          bad(n, "'" + key + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got '" + (n.IsScalar() ? n.Scalar() : "") + "'");
          return;
        }
        into = static_cast<int>(*v);
      };
      // A nested mapping with its own keys: backoff, breaker.
      auto nested = [&](const YAML::Node& n, const std::string& key, const std::vector<std::string>& keys,
                        const auto& each) {
        if (!n.IsMap()) {
          bad(n, "'" + key + "' must be a mapping { " + keys[0] + ": ..., " + keys[1] + ": ... }");
          return;
        }
        for (const auto& kv : n) {
          const auto k = kv.first.Scalar();
          if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
            bad(kv.first, "unknown key '" + key + "." + k + "'" + graph::did_you_mean(k, keys));
            continue;
          }
          each(k, kv.second);
        }
      };
      for (const auto& kv : body) {
        const auto key = kv.first.Scalar();
        const auto& val = kv.second;
        if (std::find(known.begin(), known.end(), key) == known.end()) {
          bad(kv.first, "unknown key '" + key + "'" + graph::did_you_mean(key, known));
          continue;
        }
        if (key == "backoff") {
          nested(val, key, backoff_keys, [&](const std::string& k, const YAML::Node& v) {
            duration(v, "backoff." + k, std::chrono::milliseconds(1), k_max_timeout,
                     k == "min" ? e.backoff.min : e.backoff.max);
          });
        } else if (key == "breaker") {
          nested(val, key, breaker_keys, [&](const std::string& k, const YAML::Node& v) {
            if (k == "failures") {
              integer(v, "breaker.failures", 1, 1000, e.breaker.failures);
            } else {
              duration(v, "breaker.open_for", std::chrono::milliseconds(1),
                       std::chrono::milliseconds(3'600'000), e.breaker.open_for);
            }
          });
        } else if (!val.IsScalar()) {
          bad(val, "'" + key + "' must be a single value");
        } else if (key == "provider") {
          has_provider = true;
          if (val.Scalar() == "http") {
            e.provider = provider_kind::http;
          } else if (val.Scalar() == "log") {
            e.provider = provider_kind::log;
          } else {
            bad(val, "unknown provider '" + val.Scalar() + "' (one of: http, log)" +
                         graph::did_you_mean(val.Scalar(), {"http", "log"}));
          }
        } else if (key == "url") {
          if (!is_valid_url(val.Scalar())) {
            bad(val, "'url' must be an http:// or https:// URL with a host, got '" + val.Scalar() + "'");
          } else {
            e.url = val.Scalar();
          }
        } else if (key == "timeout") {
          duration(val, key, std::chrono::milliseconds(1), k_max_timeout, e.timeout);
        } else if (key == "retries") {
          integer(val, key, 0, k_max_retries, e.retries);
        } else if (key == "secret_file") {
          if (val.Scalar().empty()) {
            bad(val, "'secret_file' must name a file");
          } else {
            e.secret_file = graph::resolve_section_path(val.Scalar(), base_dir);
          }
        }
      }
      if (!ok) continue;
      if (!has_provider) {
        fail(body, owner + "missing 'provider' (http or log)");
        continue;
      }
      if (e.provider == provider_kind::http && e.url.empty()) {
        fail(body, owner + "an http effect needs 'url' (http:// or https://)");
        continue;
      }
      if (e.provider == provider_kind::log && !e.url.empty()) {
        fail(body["url"], owner + "a log effect takes no 'url'");
        continue;
      }
      if (e.backoff.min > e.backoff.max) {
        fail(body["backoff"], owner + "'backoff.min' (" + std::to_string(e.backoff.min.count()) +
                                  "ms) is larger than 'backoff.max' (" +
                                  std::to_string(e.backoff.max.count()) + "ms)");
        continue;
      }
      if (!e.secret_file.empty()) {
        auto secret = read_secret(e.secret_file);
        if (!secret.ok()) {
          fail(body["secret_file"], owner + secret.err().message);
          continue;
        }
        e.secret = secret_value(std::move(secret).value());
      }
      out.push_back(std::move(e));
    }
  }
  if (auto st = graph::section_problems(problems); !st.ok()) return std::move(st).err();
  return out;
}

}  // namespace esflow::runner
