#pragma once

#include <exception>
#include <string>
#include <utility>

#include "daemon/http.h"

namespace triage::daemon {

// Wraps an Asio completion handler into a callable that any thread may invoke once: the
// handler then runs on its own associated executor (the waiting coroutine's strand), never on
// the calling thread. This is how the storage writer thread hands results back to coroutines.
template <typename Handler>
auto ResumeOnOwnExecutor(Handler handler) {
  return [handler = std::move(handler)](auto result) mutable {
    auto executor = asio::get_associated_executor(handler);
    asio::post(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
      std::move(handler)(std::move(result));
    });
  };
}

// The message of the exception a coroutine ended with (co_spawn's completion), for the log.
inline std::string ExceptionMessage(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace triage::daemon
