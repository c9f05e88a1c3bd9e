#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "daemon/blocking.h"
#include "daemon/http.h"

namespace triage::daemon {

// Group commit for work on the blocking pool, for the coroutines of one strand: calls that
// arrive while a group is running wait together and go as the next group, one call of `run`
// (on the pool) for all of their items. Under load a group holds everything that arrived
// during the previous one; alone, a call runs at once. The caller whose item came first in a
// group runs it, so nobody waits longer than its own group and the one before.
//
// `run` gets the group's items and returns one result per item, in their order.
//
// Thread-safety: Call only from the strand the object is used on; `run` runs on a pool thread,
// one group at a time.
template <typename Item, typename Result>
class Grouped {
 public:
  using Run = std::function<std::vector<Result>(std::vector<Item>& items)>;

  Grouped(BlockingPool& pool, Run run) : pool_(pool), run_(std::move(run)) {}

  asio::awaitable<Result> Call(Item item) {
    if (next_ == nullptr) next_ = std::make_shared<Group>(co_await asio::this_coro::executor);
    // Held by this frame: a group lives until every member has its result.
    const std::shared_ptr<Group> mine = next_;
    const size_t slot = mine->items.size();
    mine->items.push_back(std::move(item));
    if (!running_) {
      running_ = true;
      mine->lead = true;
    }
    while (!mine->finished) {
      if (mine->lead && slot == 0) {
        if (next_ == mine) next_ = nullptr;  // later calls form the next group
        // (Captured by reference: GCC 12 destroys a non-trivial temporary of a co_await
        // expression twice.)
        mine->results = co_await pool_.Run([this, &mine] { return run_(mine->items); });
        mine->finished = true;
        mine->done.cancel();
        if (next_ != nullptr) {
          next_->lead = true;  // its first member runs it
          next_->done.cancel();
        } else {
          running_ = false;
        }
        break;
      }
      co_await mine->done.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    co_return std::move(mine->results[slot]);
  }

 private:
  struct Group {
    explicit Group(asio::any_io_executor executor) : done(executor, asio::steady_timer::time_point::max()) {}
    std::vector<Item> items;
    std::vector<Result> results;
    asio::steady_timer done;  // cancelled when the group may run, and when it has run
    bool lead = false;        // its turn has come
    bool finished = false;    // `results` are in
  };

  BlockingPool& pool_;
  const Run run_;
  // Strand-only.
  std::shared_ptr<Group> next_;  // the group that calls join now
  bool running_ = false;         // a group is running, or has been told to
};

}  // namespace triage::daemon
