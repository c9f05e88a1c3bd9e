#pragma once

#include <utility>

#include "daemon/http.h"

namespace triage::daemon {

// Wraps an Asio completion handler into a callable that any thread may invoke once: the
// handler then runs on its own associated executor (the waiting coroutine's strand), never on
// the calling thread. This is how the storage writer thread and blocking pools hand results
// back to coroutines.
template <typename Handler>
auto ResumeOnOwnExecutor(Handler handler) {
  return [handler = std::move(handler)](auto result) mutable {
    auto executor = asio::get_associated_executor(handler);
    asio::post(executor, [handler = std::move(handler), result = std::move(result)]() mutable {
      std::move(handler)(std::move(result));
    });
  };
}

// Runs the blocking `work` on `pool` and resumes the calling coroutine with its result.
template <typename Work>
asio::awaitable<std::invoke_result_t<Work>> RunBlocking(asio::thread_pool& pool, Work work) {
  using Result = std::invoke_result_t<Work>;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result)>(
      [&pool, work = std::move(work)](auto handler) mutable {
        asio::post(pool, [work = std::move(work),
                          done = ResumeOnOwnExecutor(std::move(handler))]() mutable {
          done(work());
        });
      },
      asio::use_awaitable);
}

}  // namespace triage::daemon
