#include "common/named_thread.h"

#include "common/log.h"

#include <cstdlib>
#include <exception>
#include <pthread.h>

namespace esflow {

std::thread start_named_thread(std::string name, std::string module, std::function<void()> body) {
  // The logger is looked up per call: ESFLOW_ERROR binds one module per call site.
  return std::thread([name = std::move(name), module = std::move(module), body = std::move(body)] {
    pthread_setname_np(pthread_self(), name.c_str());
    try {
      body();
    } catch (const std::exception& e) {
      module_logger(module.c_str()).error("{} thread failed: {}; stopping the process", name, e.what());
      std::abort();
    } catch (...) {
      module_logger(module.c_str())
          .error("{} thread failed with a non-standard exception; stopping the process", name);
      std::abort();
    }
  });
}

status join_named_thread(std::thread& t, std::string_view from) {
  if (!t.joinable()) return {};
  if (t.get_id() == std::this_thread::get_id())
    return error::make(errc::internal, "close() called from " + std::string(from));
  t.join();
  return {};
}

}  // namespace esflow
