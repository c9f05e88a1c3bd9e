#include "storage/queue_index.h"

#include <gtest/gtest.h>

namespace triage::storage {
namespace {

using router::Level;

constexpr int64_t kT0 = 1'800'000'000'000;  // ms
constexpr int64_t kMinute = 60'000;

IndexEntry Entry(Level level, int64_t enqueued = kT0, uint64_t chain = 0) {
  return IndexEntry{.enqueued_unix_ms = enqueued, .chain = chain, .level = level};
}

// Leases and removes everything due at `now`; the seqs in the order they left.
std::vector<uint64_t> Drain(QueueIndex& index, int64_t now) {
  std::vector<uint64_t> out;
  while (auto leased = index.Lease("d", now, false)) {
    out.push_back(leased->seq);
    EXPECT_TRUE(index.Remove("d", leased->seq).ok());
  }
  return out;
}

TEST(QueueIndexTest, UrgentFirstThenArrivalAndOldEntriesAgeAhead) {
  QueueIndex index(absl::Minutes(30));
  index.Add("d", 1, Entry(Level::kLow));
  index.Add("d", 2, Entry(Level::kUrgent));
  index.Add("d", 3, Entry(Level::kNormal));
  index.Add("d", 4, Entry(Level::kUrgent));
  EXPECT_EQ(index.size(), 4);
  EXPECT_EQ(Drain(index, kT0), (std::vector<uint64_t>{2, 4, 3, 1}));
  EXPECT_EQ(index.size(), 0);

  // A low entry that waited three aging steps ranks as urgent, and is older.
  index.Add("d", 5, Entry(Level::kLow, kT0));
  index.Add("d", 6, Entry(Level::kUrgent, kT0 + 90 * kMinute));
  EXPECT_EQ(Drain(index, kT0 + 90 * kMinute), (std::vector<uint64_t>{5, 6}));
}

TEST(QueueIndexTest, AThreadLeavesInArrivalOrderWhateverItsLevels) {
  QueueIndex index(absl::Minutes(30));
  index.Add("d", 1, Entry(Level::kLow, kT0, /*chain=*/7));
  index.Add("d", 2, Entry(Level::kUrgent, kT0, 7));
  index.Add("d", 3, Entry(Level::kHigh));  // a thread of its own
  auto first = index.Lease("d", kT0, false);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->seq, 3u) << "the urgent follow-up waits behind its thread's low head";
  EXPECT_EQ(index.Standing("d", 2, Level::kUrgent).first, "waiting_for_thread");
  auto head = index.Lease("d", kT0, false);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->seq, 1u);
  EXPECT_FALSE(index.Lease("d", kT0, false).has_value()) << "the follow-up waits while its head is out";
  // A head that goes back (a failed attempt) stays the head.
  ASSERT_TRUE(index.Return("d", 1).ok());
  head = index.Lease("d", kT0, false);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->seq, 1u);
  ASSERT_TRUE(index.Remove("d", 1).ok());
  EXPECT_EQ(Drain(index, kT0), (std::vector<uint64_t>{2}));
  ASSERT_TRUE(index.Remove("d", 3).ok());
  EXPECT_EQ(index.size(), 0);
  EXPECT_FALSE(index.Remove("d", 3).ok()) << "not leased";
}

TEST(QueueIndexTest, BackOffWaitsAsideAndAProbeTakesTheEntryDueSoonest) {
  QueueIndex index(absl::Minutes(30));
  index.Add("d", 1, Entry(Level::kUrgent));
  index.Add("d", 2, Entry(Level::kLow));
  index.Add("d", 3, Entry(Level::kNormal));
  ASSERT_EQ(index.Lease("d", kT0, false)->seq, 1u);
  ASSERT_TRUE(index.Delay("d", 1, kT0 + 10 * kMinute).ok());
  ASSERT_EQ(index.Lease("d", kT0, false)->seq, 3u) << "the entry in back-off does not block";
  ASSERT_TRUE(index.Delay("d", 3, kT0 + 5 * kMinute).ok());
  EXPECT_EQ(index.Standing("d", 3, Level::kNormal).first, "retrying");
  ASSERT_EQ(index.Lease("d", kT0, false)->seq, 2u);
  ASSERT_TRUE(index.Remove("d", 2).ok());
  EXPECT_EQ(index.NextDue("d"), absl::FromUnixMillis(kT0 + 5 * kMinute));
  EXPECT_FALSE(index.Lease("d", kT0, false).has_value());

  auto probe = index.Lease("d", kT0, /*probe=*/true);
  ASSERT_TRUE(probe.has_value());
  EXPECT_TRUE(probe->early);
  EXPECT_EQ(probe->seq, 3u);
  ASSERT_TRUE(index.Return("d", 3).ok());
  EXPECT_EQ(index.NextDue("d"), absl::FromUnixMillis(kT0 + 5 * kMinute)) << "back on its own schedule";
  EXPECT_EQ(Drain(index, kT0 + 10 * kMinute), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(index.NextDue("d"), absl::InfiniteFuture());
  EXPECT_EQ(index.NextDue("unknown"), absl::InfiniteFuture());
}

TEST(QueueIndexTest, SlaCountsAgeAndPositions) {
  QueueIndex index(absl::Minutes(30));
  const uint32_t support = index.TeamId("support");
  const uint32_t pr = index.TeamId("pr");
  EXPECT_EQ(index.TeamId("support"), support);
  // Owner entries with a 60-minute SLA: at risk in its last quarter, then overdue.
  IndexEntry owner = Entry(Level::kHigh, kT0);
  owner.team = support;
  owner.sla_deadline_unix_ms = kT0 + 60 * kMinute;
  index.Add("d", 1, owner);
  IndexEntry informed = Entry(Level::kHigh, kT0 - 5 * kMinute);
  informed.team = pr;  // no SLA: never at risk
  index.Add("d", 2, informed);
  index.Add("d", 3, owner);

  auto find = [](const std::vector<QueueDepth>& all, const std::string& team) {
    for (const QueueDepth& d : all) {
      if (d.team == team) return d;
    }
    return QueueDepth{"", "", Level::kLow, -1};
  };
  EXPECT_EQ(find(index.Depths(kT0 + 30 * kMinute), "support").sla_at_risk, 0);
  EXPECT_EQ(find(index.Depths(kT0 + 50 * kMinute), "support").sla_at_risk, 2);
  const QueueDepth late = find(index.Depths(kT0 + 61 * kMinute), "support");
  EXPECT_EQ(late.sla_overdue, 2);
  EXPECT_EQ(late.sla_at_risk, 0);
  EXPECT_EQ(late.entries, 2);
  EXPECT_EQ(find(index.Depths(kT0 + 61 * kMinute), "pr").sla_overdue, 0);
  const QueueDepth exact = find(index.QueueStats(kT0 + 50 * kMinute), "support");
  EXPECT_EQ(exact.sla_at_risk, 2);
  EXPECT_EQ(exact.oldest_enqueued_unix_ms, kT0);

  // Positions count the ready entries ahead; the oldest arrival includes entries leased.
  EXPECT_EQ(index.Standing("d", 3, Level::kHigh), (std::pair<std::string, int64_t>{"queued", 3}));
  ASSERT_EQ(index.Lease("d", kT0, false)->seq, 1u);
  EXPECT_EQ(index.Standing("d", 1, Level::kHigh).first, "in_flight");
  EXPECT_EQ(index.Standing("d", 3, Level::kHigh), (std::pair<std::string, int64_t>{"queued", 2}));
  const std::vector<QueueDepth> oldest = index.OldestEntries();
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_EQ(oldest[0].oldest_enqueued_unix_ms, kT0 - 5 * kMinute);
  EXPECT_EQ(index.Standing("other", 1, Level::kHigh).first, "unknown");
}

}  // namespace
}  // namespace triage::storage
