#pragma once

#include <type_traits>
#include <utility>

#include "daemon/async.h"
#include "daemon/http.h"

namespace triage::daemon {

// A few threads for work that may wait on the disk: synced storage writes, storage reads and
// scans, file appends with fdatasync, config reloads (YAML, Hyperscan compiles, models). The
// Asio I/O threads never do such work, so a webhook is answered and the watchdog pinged
// however slow the disk is.
//
// Thread-safety: Run from any coroutine; Join once, after the I/O threads have stopped (work
// still queued then is run first, its completions go nowhere).
class BlockingPool {
 public:
  explicit BlockingPool(int threads) : pool_(static_cast<size_t>(threads)) {}
  ~BlockingPool() { Join(); }

  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Runs `work` on a pool thread; the awaiting coroutine resumes on its own executor (its
  // strand) with the result. `work` must return a value.
  template <typename Work>
  asio::awaitable<std::invoke_result_t<Work&>> Run(Work work) {
    using Result = std::invoke_result_t<Work&>;
    static_assert(!std::is_void_v<Result>, "blocking work returns its outcome");
    return asio::async_initiate<const asio::use_awaitable_t<>, void(Result)>(
        [this](auto handler, Work work) {
          asio::post(pool_, [work = std::move(work),
                             done = ResumeOnOwnExecutor(std::move(handler))]() mutable {
            done(work());
          });
        },
        asio::use_awaitable, std::move(work));
  }

  // Runs `work` on a pool thread; nobody waits for it.
  template <typename Work>
  void Post(Work work) {
    asio::post(pool_, std::move(work));
  }

  void Join() { pool_.join(); }

 private:
  asio::thread_pool pool_;
};

}  // namespace triage::daemon
