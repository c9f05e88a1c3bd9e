#include "daemon/grouped.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <optional>
#include <vector>

namespace triage::daemon {
namespace {

// Calls made while a group runs wait and go together as the next group, each with its own
// result; a call made when nothing runs goes at once, alone.
TEST(GroupedTest, CallsThatArriveWhileAGroupRunsGoTogetherAsTheNext) {
  constexpr int kCalls = 20;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard(io.get_executor());
  BlockingPool pool(2);
  std::promise<void> release;
  const std::shared_future<void> released = release.get_future().share();
  std::mutex mu;
  std::vector<std::vector<int>> groups;
  Grouped<int, int> grouped(pool, [&](std::vector<int>& items) {
    bool first;
    {
      std::lock_guard lock(mu);
      groups.push_back(items);
      first = groups.size() == 1;
    }
    if (first) released.wait();  // held until every other call has been made
    std::vector<int> out;
    for (int item : items) out.push_back(item * 10);
    return out;
  });

  auto strand = asio::make_strand(io);
  std::vector<int> results(kCalls, -1);
  int finished = 0;
  auto call = [&](int item) -> asio::awaitable<void> {
    results[item] = co_await grouped.Call(item);
    if (++finished >= kCalls) guard.reset();  // each phase ends when its calls have
  };
  for (int i = 0; i < kCalls; ++i) asio::co_spawn(strand, call(i), asio::detached);
  // Queued on the strand behind every call: they have all joined when this runs.
  asio::post(strand, [&] { release.set_value(); });
  io.run_for(std::chrono::seconds(10));
  ASSERT_EQ(finished, kCalls);

  // Later, alone: it goes at once.
  guard.emplace(io.get_executor());
  asio::co_spawn(strand, call(0), asio::detached);
  io.restart();
  io.run_for(std::chrono::seconds(10));

  std::vector<int> rest;
  for (int i = 1; i < kCalls; ++i) rest.push_back(i);
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0], std::vector<int>{0});
  EXPECT_EQ(groups[1], rest) << "everything that arrived meanwhile, in one group, in order";
  EXPECT_EQ(groups[2], std::vector<int>{0});
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(results[i], i * 10) << "call " << i;
}

}  // namespace
}  // namespace triage::daemon
