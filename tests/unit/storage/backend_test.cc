// The Backend contract, on its own: what the store's write path, recovery and delivery
// operations rely on from whatever keeps the records. Parameterised by backend, so that each
// new one (JetStream next) is held to the same words.
#include "storage/backend.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/queue_index.h"
#include "storage/recovery.h"
#include "tests/support/backends.h"
#include "tests/test_util.h"

namespace triage::storage {
namespace {

using router::Level;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

// Opens the backend kept at `path` (a folder the test owns); a second open of the same path sees
// what the first stored.
std::unique_ptr<Backend> OpenAt(const std::string& kind, const std::string& path) {
  StoreOptions options;
  options.path = path;
  auto backend = testing::OpenBackend(kind, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

NewMessage Msg(const std::string& id, Level level, std::vector<std::string> destinations, std::string thread = "") {
  NewMessage m;
  m.key = MessageKey("src", id);
  m.ticket_json = "{\"id\":\"" + id + "\"}";
  m.level = level;
  m.thread_key = std::move(thread);
  for (const std::string& d : destinations) m.deliveries.push_back({d, "support", true});
  return m;
}

// What a replay reports, copied out of its views.
struct Replayed {
  std::string destination;
  uint64_t seq;
  std::string team;
  Level level;
  int64_t due_unix_ms;
  bool operator==(const Replayed&) const = default;
};
std::ostream& operator<<(std::ostream& out, const Replayed& r) {
  return out << r.destination << "/" << r.seq << "/" << r.team << "/" << static_cast<int>(r.level) << "/"
             << r.due_unix_ms;
}

std::vector<Replayed> ReplayAll(Backend& backend, absl::Time now) {
  std::vector<Replayed> out;
  EXPECT_TRUE(backend
                  .Replay(now,
                          [&out](const QueuedEntry& q) {
                            out.push_back({std::string(q.destination), q.seq, std::string(q.team), q.entry.level,
                                           q.entry.due_unix_ms});
                          })
                  .ok());
  return out;
}

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() != "jetstream" || testing::SharedCluster() != nullptr) return;
    if (testing::NatsCluster::Required()) {
      FAIL() << "no NATS cluster (TRIAGE_REQUIRE_NATS): nats-server is missing or its cluster did not start (stderr)";
    }
    GTEST_SKIP() << "nats-server is not installed";
  }
  std::unique_ptr<Backend> Open() { return OpenAt(GetParam(), dir_.path()); }
  testing::TempDir dir_;
};

// One commit decides duplicates (stored before, or earlier in the same group), stores the rest
// with one entry per delivery in each destination's seq order, and a reopened backend replays exactly those
// entries, each destination's in seq order.
TEST_P(BackendTest, ACommitIsDedupedAndReplayedInSeqOrder) {
  std::vector<uint64_t> seqs;
  {
    auto backend = Open();
    ASSERT_NE(backend, nullptr);
    ASSERT_TRUE(ReplayAll(*backend, kT0).empty());
    std::vector<IngestRequest> group(2);
    group[0] = {{Msg("a", Level::kLow, {"zd", "slack"}), Msg("b", Level::kUrgent, {"zd"})}, kT0, std::nullopt};
    group[1] = {{Msg("b", Level::kUrgent, {"zd"}), Msg("c", Level::kHigh, {"zd"})}, kT0, std::nullopt};
    std::vector<IngestResult> results(group.size());
    std::vector<QueuedEntry> queued;
    ASSERT_TRUE(backend->Commit(absl::MakeSpan(group), absl::MakeSpan(results), queued).ok());
    EXPECT_EQ(results[0].stored, 2);
    EXPECT_EQ(results[0].duplicates, 0);
    EXPECT_EQ(results[1].stored, 1);
    EXPECT_EQ(results[1].duplicate, (std::vector<bool>{true, false}));
    ASSERT_EQ(queued.size(), 4u);
    // Each destination's in seq order (seqs are per destination).
    for (size_t i = 0; i < queued.size(); ++i) {
      for (size_t j = i + 1; j < queued.size(); ++j) {
        if (queued[i].destination == queued[j].destination) {
          EXPECT_LT(queued[i].seq, queued[j].seq);
        }
      }
    }
    for (const QueuedEntry& q : queued) seqs.push_back(q.seq);
    EXPECT_EQ(queued[1].destination, "slack");
    EXPECT_EQ(queued[2].entry.level, Level::kUrgent);

    // Stored before: a duplicate in a later commit too.
    std::vector<IngestRequest> again(1);
    again[0] = {{Msg("a", Level::kLow, {"zd"})}, kT0 + absl::Minutes(1), std::nullopt};
    std::vector<IngestResult> again_results(1);
    std::vector<QueuedEntry> none;
    ASSERT_TRUE(backend->Commit(absl::MakeSpan(again), absl::MakeSpan(again_results), none).ok());
    EXPECT_EQ(again_results[0].duplicates, 1);
    EXPECT_TRUE(none.empty());
  }
  auto reopened = Open();
  ASSERT_NE(reopened, nullptr);
  const std::vector<Replayed> replayed = ReplayAll(*reopened, kT0);
  ASSERT_EQ(replayed.size(), 4u);
  std::vector<Replayed> zd;
  for (const Replayed& r : replayed) {
    if (r.destination == "zd") zd.push_back(r);
  }
  ASSERT_EQ(zd.size(), 3u);
  EXPECT_EQ(zd[0], (Replayed{"zd", seqs[0], "support", Level::kLow, 0}));
  EXPECT_EQ(zd[1], (Replayed{"zd", seqs[2], "support", Level::kUrgent, 0}));
  EXPECT_EQ(zd[2], (Replayed{"zd", seqs[3], "support", Level::kHigh, 0}));
  // Seqs go on after the replayed ones: a new entry never reuses one.
  std::vector<IngestRequest> more(1);
  more[0] = {{Msg("d", Level::kLow, {"zd"})}, kT0, std::nullopt};
  std::vector<IngestResult> more_results(1);
  std::vector<QueuedEntry> queued;
  ASSERT_TRUE(reopened->Commit(absl::MakeSpan(more), absl::MakeSpan(more_results), queued).ok());
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_GT(queued[0].seq, seqs.back());
}

// The delivery operations change what a replay finds: a delivered entry is gone, a rescheduled
// one is in back-off until its due time, a dead letter is counted and comes back by Requeue
// with its seq.
TEST_P(BackendTest, DeliveryOperationsAreWhatTheNextReplayFinds) {
  auto backend = Open();
  ASSERT_NE(backend, nullptr);
  std::vector<IngestRequest> group(1);
  group[0] = {{Msg("a", Level::kLow, {"zd"}), Msg("b", Level::kLow, {"zd"}), Msg("c", Level::kLow, {"zd"})},
              kT0,
              std::nullopt};
  std::vector<IngestResult> results(1);
  std::vector<QueuedEntry> queued;
  ASSERT_TRUE(backend->Commit(absl::MakeSpan(group), absl::MakeSpan(results), queued).ok());
  ASSERT_EQ(queued.size(), 3u);
  std::vector<Lease> leases;
  for (const QueuedEntry& q : queued) {
    absl::StatusOr<std::optional<QueueEntry>> entry = backend->ReadEntry("zd", q.entry.level, q.seq);
    ASSERT_TRUE(entry.ok() && entry->has_value());
    leases.push_back({"zd", q.seq, **entry, false});
  }
  EXPECT_EQ(leases[0].entry.ticket_json, "{\"id\":\"a\"}");

  const Lease* delivered = &leases[0];
  ASSERT_TRUE(backend->Delivered({&delivered, 1}, kT0).ok());
  QueueEntry later = leases[1].entry;
  later.next_attempt_unix_ms = absl::ToUnixMillis(kT0 + absl::Minutes(5));
  later.attempts = 1;
  ASSERT_TRUE(backend->Update(leases[1], later, false).ok());
  ASSERT_TRUE(backend->MoveToDead(leases[2], leases[2].entry).ok());
  EXPECT_EQ(backend->DeadLetterCount(), 1);

  const absl::StatusOr<std::optional<QueueEntry>> gone = backend->ReadEntry("zd", Level::kLow, leases[0].seq);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  // Replay comes first after an open: reopen to see what a restart finds.
  backend.reset();
  backend = Open();
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(ReplayAll(*backend, kT0),
            (std::vector<Replayed>{{"zd", leases[1].seq, "support", Level::kLow, later.next_attempt_unix_ms}}));
  EXPECT_EQ(backend->DeadLetterCount(), 1);
  backend.reset();
  backend = Open();
  ASSERT_NE(backend, nullptr);
  // Due by then: ready.
  EXPECT_EQ(ReplayAll(*backend, kT0 + absl::Minutes(6))[0].due_unix_ms, 0);

  const absl::StatusOr<std::vector<DeadEntry>> requeued = backend->Requeue("zd", std::nullopt);
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  ASSERT_EQ(requeued->size(), 1u);
  EXPECT_EQ((*requeued)[0].entry.message_key, leases[2].entry.message_key);
  EXPECT_EQ((*requeued)[0].entry.attempts, 0u);
  // Queued again at the seq it reports (its own, or a new one at the end of the queue).
  const absl::StatusOr<std::optional<QueueEntry>> back = backend->ReadEntry("zd", Level::kLow, (*requeued)[0].seq);
  ASSERT_TRUE(back.ok() && back->has_value()) << back.status();
  EXPECT_EQ((*back)->message_key, leases[2].entry.message_key);
  EXPECT_EQ(backend->DeadLetterCount(), 0);
  backend.reset();
  backend = Open();
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(ReplayAll(*backend, kT0 + absl::Minutes(6)).size(), 2u);
  EXPECT_EQ(backend->DeadLetterCount(), 0);
}

// Recovery puts the replayed entries into the index as the write path would have: ready ones
// lease at once, those in back-off wait.
TEST_P(BackendTest, RebuildIndexLeasesWhatWasQueued) {
  {
    auto backend = Open();
    ASSERT_NE(backend, nullptr);
    std::vector<IngestRequest> group(1);
    group[0] = {{Msg("a", Level::kLow, {"zd"}), Msg("b", Level::kUrgent, {"zd"})}, kT0, std::nullopt};
    std::vector<IngestResult> results(1);
    std::vector<QueuedEntry> queued;
    ASSERT_TRUE(backend->Commit(absl::MakeSpan(group), absl::MakeSpan(results), queued).ok());
  }
  auto backend = Open();
  ASSERT_NE(backend, nullptr);
  QueueIndex index(absl::Minutes(30));
  ASSERT_TRUE(RebuildIndex(*backend, index, kT0).ok());
  EXPECT_EQ(index.size(), 2);
  const std::optional<QueueIndex::Leased> first = index.Lease("zd", absl::ToUnixMillis(kT0), false);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->entry.level, Level::kUrgent);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest, ::testing::Values("rocksdb", "jetstream"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace triage::storage
