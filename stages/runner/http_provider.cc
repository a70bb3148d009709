#include "stages/runner/http_provider.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <curl/curl.h>
#include <mutex>

namespace esflow::runner {
namespace {

void global_init_once() {
  static std::once_flag once;
  // Never cleaned up: other threads (and other libraries) may use curl until exit.
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One easy handle per thread, reused (with its connection cache) across attempts.
struct thread_handle {
  CURL* handle = nullptr;
  thread_handle() = default;
  thread_handle(const thread_handle&) = delete;
  thread_handle& operator=(const thread_handle&) = delete;
  ~thread_handle() {
    if (handle != nullptr) curl_easy_cleanup(handle);
  }
  CURL* get() {
    if (handle == nullptr) {
      handle = curl_easy_init();
    } else {
      curl_easy_reset(handle);  // keeps live connections and the DNS cache
    }
    return handle;
  }
};

struct body_sink {
  std::string body;
  bool oversize = false;
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* sink = static_cast<body_sink*>(user);
  const auto bytes = size * n;
  if (sink->body.size() + bytes > http_provider::k_max_response_bytes) {
    sink->oversize = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  sink->body.append(data, bytes);
  return bytes;
}

// Asked by libcurl about once a second (more often while data flows).
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::stop_token*>(user)->stop_requested() ? 1 : 0;
}

// A header value is one line of visible characters (plus spaces).
bool header_safe(std::string_view v) {
  return std::none_of(v.begin(), v.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

struct header_list {
  curl_slist* list = nullptr;
  header_list() = default;
  header_list(const header_list&) = delete;
  header_list& operator=(const header_list&) = delete;
  ~header_list() { curl_slist_free_all(list); }
  bool add(const std::string& line) {
    auto* next = curl_slist_append(list, line.c_str());
    if (next == nullptr) return false;
    list = next;
    return true;
  }
};

bool retryable_transport_error(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_AGAIN:
      return true;
    default:
      return false;
  }
}

}  // namespace

http_provider::http_provider(const effect_config& config)
    : _effect(config.name), _url(config.url), _timeout(config.timeout) {
  global_init_once();
  if (!config.secret.empty()) _authorization = "Authorization: Bearer " + config.secret.reveal();
}

effect_outcome http_provider::attempt(const effect_call& call, std::stop_token stop) {
  thread_local thread_handle local;
  CURL* curl = local.get();
  if (curl == nullptr) return effect_outcome::failure("http: cannot create a curl handle", true);
  if (call.command_id.empty() || !header_safe(call.command_id))
    return effect_outcome::failure("http: the command id cannot be an Idempotency-Key", false);

  header_list headers;
  bool ok = headers.add("Content-Type: application/json") && headers.add("Accept: application/json") &&
            headers.add("Idempotency-Key: " + call.command_id) && headers.add("Expect:");
  if (!_authorization.empty()) ok = ok && headers.add(_authorization);
  const auto traceparent = traceparent_of(call);
  if (!traceparent.empty() && header_safe(traceparent)) ok = ok && headers.add("traceparent: " + traceparent);
  if (!call.correlation_id.empty() && header_safe(call.correlation_id))
    ok = ok && headers.add("x-correlation-id: " + call.correlation_id);
  if (!ok) return effect_outcome::failure("http: out of memory building the request", true);

  static const std::string empty_object = "{}";
  const std::string& payload = call.payload_json.empty() ? empty_object : call.payload_json;
  body_sink sink;
  char curl_error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, _url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM: we are multithreaded
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "esflow-runner");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
  curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(k_max_response_bytes));
  if (stop.stop_possible()) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &stop);
  }

  const CURLcode code = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  // The handle outlives this call: drop pointers to our locals now.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, nullptr);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, nullptr);

  const int http_status = static_cast<int>(status);
  if (sink.oversize || code == CURLE_FILESIZE_EXCEEDED)
    return effect_outcome::failure(
        "http: the answer's body is larger than 1MiB (status " + std::to_string(http_status) + ")", false,
        http_status);
  if (code == CURLE_ABORTED_BY_CALLBACK)
    return effect_outcome::failure("unavailable: the effect executor stopped during the attempt", true,
                                   http_status);
  if (code != CURLE_OK) {
    std::string why = curl_error[0] != '\0' ? curl_error : curl_easy_strerror(code);
    if (code == CURLE_OPERATION_TIMEDOUT)
      why = "timeout after " + std::to_string(_timeout.count()) + "ms (" + why + ")";
    return effect_outcome::failure("http: " + why, retryable_transport_error(code), http_status);
  }
  if (http_status >= 200 && http_status < 300) {
    auto json = nlohmann::json::parse(sink.body, nullptr, false);
    if (json.is_object()) return effect_outcome::success(json.dump(), http_status);
    return effect_outcome::success(R"({"status":)" + std::to_string(http_status) + "}", http_status);
  }
  const auto excerpt = sink.body.substr(0, 256);
  const auto what = "http: status " + std::to_string(http_status) + (excerpt.empty() ? "" : ": " + excerpt);
  if (http_status >= 500) return effect_outcome::failure(what, true, http_status);
  return effect_outcome::failure(what, false, http_status);
}

}  // namespace esflow::runner
