#include "storage/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "tests/support/backends.h"
#include "tests/test_util.h"

namespace triage::storage {
namespace {

using router::Level;

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);

NewMessage Msg(const std::string& id, Level level, std::vector<std::string> destinations = {"d"}) {
  NewMessage m;
  m.key = MessageKey("src", id);
  m.ticket_json = "{\"id\":\"" + id + "\"}";
  m.level = level;
  for (const std::string& d : destinations) m.deliveries.push_back({d, "support", true});
  return m;
}

// The id of the lease's thread ticket, as FindThreadTicket reads it.
absl::StatusOr<std::optional<std::string>> TicketId(Store& store, const Lease& lease) {
  absl::StatusOr<std::optional<ThreadTicket>> found = store.FindThreadTicket(lease);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return std::optional<std::string>();
  return std::optional<std::string>((*found)->id);
}

// Submits and waits for the writer's answer.
IngestResult SubmitSync(Store& store, std::vector<NewMessage> messages, absl::Time at = kT0) {
  std::promise<IngestResult> done;
  store.Submit(std::move(messages), at, [&](IngestResult r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

// A store on the backend under test (testing::BackendUnderTest()).
std::unique_ptr<Store> OpenStore(const std::string& path, absl::Time now = kT0,
                                 StoreOptions options = StoreOptions()) {
  options.path = path;
  auto backend = testing::OpenBackend(testing::BackendUnderTest(), options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  if (!backend.ok()) return nullptr;
  auto store = Store::Open(*std::move(backend), options, now);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// For the tests of what only RocksDB has (its Env, compaction, its files).
#define ROCKSDB_ONLY()                                                                  \
  if (testing::BackendUnderTest() != "rocksdb") GTEST_SKIP() << "a RocksDB behaviour"

std::vector<std::string> DrainIds(Store& store, const std::string& destination, absl::Time now) {
  std::vector<std::string> ids;
  while (auto lease = store.LeaseNext(destination, now)) {
    ids.push_back(lease->entry.message_key.substr(4));
    EXPECT_TRUE(store.Ack(*lease).ok());
  }
  return ids;
}

TEST(StoreTest, LeasesByLevelThenArrival) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(SubmitSync(*store, {Msg("low1", Level::kLow), Msg("norm1", Level::kNormal)}).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("urg1", Level::kUrgent), Msg("low2", Level::kLow)}).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("urg2", Level::kUrgent), Msg("high1", Level::kHigh)}).status.ok());
  EXPECT_EQ(store->QueuedEntries(), 6);
  EXPECT_EQ(DrainIds(*store, "d", kT0),
            (std::vector<std::string>{"urg1", "urg2", "high1", "norm1", "low1", "low2"}));
  EXPECT_EQ(store->QueuedEntries(), 0);
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value());
  EXPECT_FALSE(store->LeaseNext("unknown", kT0).has_value());
}

// A destination that sends many at a time leases them in one call, in LeaseNext's order and
// with its thread rule, and records them delivered in one write.
TEST(StoreTest, LeasesAndAcksInBatches) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    NewMessage follow_up = Msg("urg-follow-up", Level::kUrgent);
    follow_up.thread_key = "thread";
    NewMessage first = Msg("low-first", Level::kLow);
    first.thread_key = "thread";
    ASSERT_TRUE(SubmitSync(*store, {first, Msg("norm", Level::kNormal), follow_up, Msg("high", Level::kHigh)}).status.ok());

    std::vector<Lease> leased = store->LeaseBatch("d", kT0, 10);
    std::vector<std::string> ids;
    for (const Lease& lease : leased) ids.push_back(lease.entry.message_key.substr(4));
    // The follow-up waits behind its thread's first entry, however urgent.
    EXPECT_EQ(ids, (std::vector<std::string>{"high", "norm", "low-first"}));
    EXPECT_TRUE(store->LeaseBatch("d", kT0, 10).empty()) << "every ready entry is leased already";

    std::vector<const Lease*> acked;
    for (const Lease& lease : leased) acked.push_back(&lease);
    ASSERT_TRUE(store->AckBatch(acked).ok());
    EXPECT_EQ(store->QueuedEntries(), 1);
    const std::vector<MessageDelivery> delivered = store->Deliveries(MessageKey("src", "norm"));
    ASSERT_EQ(delivered.size(), 1u);
    EXPECT_EQ(delivered[0].state, "delivered");
    EXPECT_EQ(delivered[0].entry.attempts, 1u);
    EXPECT_EQ(store->LeaseBatch("d", kT0, 1).size(), 1u) << "the follow-up, once its thread moved on";
  }
  // The acks outlive a restart: only the leased follow-up comes back.
  auto store = OpenStore(dir.path());
  std::vector<Lease> again = store->LeaseBatch("d", kT0, 10);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].entry.message_key, MessageKey("src", "urg-follow-up"));
}

TEST(StoreTest, OneEntryPerDestinationAndDepthsByTeamAndLevel) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  NewMessage m = Msg("m", Level::kHigh, {"zendesk", "slack"});
  m.deliveries.push_back({"slack", "pr", false});
  ASSERT_TRUE(SubmitSync(*store, {m}).status.ok());
  EXPECT_EQ(store->QueuedEntries(), 3);
  int64_t slack = 0;
  for (const QueueDepth& d : store->Depths(kT0)) {
    if (d.destination == "slack") slack += d.entries;
    EXPECT_EQ(d.level, Level::kHigh);
  }
  EXPECT_EQ(slack, 2);
  const auto lease = store->LeaseNext("zendesk", kT0);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->entry.ticket_json, "{\"id\":\"m\"}");
  EXPECT_TRUE(lease->entry.owner);
}

TEST(StoreTest, DuplicatesWithinTheWindowAddNothing) {
  testing::TempDir dir;
  StoreOptions options;
  options.dedup_window = absl::Hours(1);
  auto store = OpenStore(dir.path(), kT0, options);
  IngestResult first = SubmitSync(*store, {Msg("a", Level::kLow), Msg("b", Level::kLow)});
  EXPECT_EQ(first.stored, 2);
  // Same request again, plus a message repeated inside one request.
  IngestResult again = SubmitSync(*store, {Msg("a", Level::kLow), Msg("c", Level::kLow),
                                           Msg("c", Level::kLow)});
  EXPECT_TRUE(again.status.ok());
  EXPECT_EQ(again.stored, 1);
  EXPECT_EQ(again.duplicates, 2);
  EXPECT_EQ(again.duplicate, (std::vector<bool>{true, false, true}));
  EXPECT_EQ(store->QueuedEntries(), 3);
  // Past the window the same key is a new message again.
  IngestResult later = SubmitSync(*store, {Msg("a", Level::kLow)}, kT0 + absl::Hours(2));
  EXPECT_EQ(later.stored, 1);
  EXPECT_EQ(store->QueuedEntries(), 4);
}

// An Env whose clock stands still at kT0: the dedup expiry filter reads the Env's clock.
class FixedClockEnv : public rocksdb::EnvWrapper {
 public:
  FixedClockEnv() : EnvWrapper(rocksdb::Env::Default()) {}
  const char* Name() const override { return "FixedClockEnv"; }
  uint64_t NowMicros() override { return static_cast<uint64_t>(absl::ToUnixMicros(kT0)); }
};

TEST(StoreTest, CompactionDropsDedupRecordsPastTheWindowWithoutAScan) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  FixedClockEnv env;
  StoreOptions options;
  options.dedup_window = absl::Hours(24 * 8);
  options.env = &env;
  const absl::Time now = kT0;
  auto store = OpenStore(dir.path(), now, options);
  ASSERT_TRUE(SubmitSync(*store, {Msg("old", Level::kLow)}, now - absl::Hours(24 * 9)).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("recent", Level::kLow)}, now - absl::Hours(24 * 7)).status.ok());
  ASSERT_TRUE(store->Compact().ok());
  EXPECT_EQ(store->GetMessage(MessageKey("src", "old")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store->GetMessage(MessageKey("src", "recent")).ok());
  EXPECT_EQ(store->QueuedEntries(), 2) << "expiry touches the dedup index, never the queues";
}

TEST(StoreTest, ConcurrentRequestsAreAllCommitted) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  constexpr int kThreads = 8, kPerThread = 200;
  std::atomic<int> stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const IngestResult r = SubmitSync(*store, {Msg(std::to_string(t) + "-" + std::to_string(i), Level::kNormal)});
        stored += r.stored;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(stored.load(), kThreads * kPerThread);
  EXPECT_EQ(store->QueuedEntries(), kThreads * kPerThread);
}

TEST(StoreTest, RestartReturnsLeasedEntriesAndKeepsOrder) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("n", Level::kNormal), Msg("u", Level::kUrgent),
                                    Msg("l", Level::kLow)}).status.ok());
    auto lease = store->LeaseNext("d", kT0);
    ASSERT_TRUE(lease.has_value());
    EXPECT_EQ(lease->entry.message_key, MessageKey("src", "u"));
    // Closed without ack: as after a crash, the lease is gone, the entry is not.
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->QueuedEntries(), 3);
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"u", "n", "l"}));
  // Sequence numbers continue after the restart: new entries sort after old ones.
  ASSERT_TRUE(SubmitSync(*store, {Msg("l2", Level::kLow)}).status.ok());
  EXPECT_TRUE(store->GetMessage(MessageKey("src", "l2")).ok());
}

TEST(StoreTest, EntriesInBackOffDoNotBlockTheOthers) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(SubmitSync(*store, {Msg("u", Level::kUrgent), Msg("l", Level::kLow)}).status.ok());
  auto urgent = store->LeaseNext("d", kT0);
  ASSERT_TRUE(urgent.has_value());
  ASSERT_TRUE(store->RetryLater(*urgent, kT0 + absl::Seconds(30), "HTTP 503").ok());
  auto next = store->LeaseNext("d", kT0 + absl::Seconds(1));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->entry.message_key, MessageKey("src", "l"));
  ASSERT_TRUE(store->Ack(*next).ok());
  EXPECT_FALSE(store->LeaseNext("d", kT0 + absl::Seconds(29)).has_value());
  EXPECT_EQ(store->NextDue("d"), kT0 + absl::Seconds(30));
  auto retried = store->LeaseNext("d", kT0 + absl::Seconds(30));
  ASSERT_TRUE(retried.has_value());
  EXPECT_EQ(retried->entry.attempts, 1u);
  EXPECT_EQ(retried->entry.last_error, "HTTP 503");
}

TEST(StoreTest, BackOffSurvivesRestart) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("u", Level::kUrgent)}).status.ok());
    auto lease = store->LeaseNext("d", kT0);
    ASSERT_TRUE(store->RetryLater(*lease, kT0 + absl::Minutes(5), "timeout").ok());
  }
  auto store = OpenStore(dir.path(), kT0 + absl::Minutes(1));
  EXPECT_FALSE(store->LeaseNext("d", kT0 + absl::Minutes(1)).has_value());
  auto lease = store->LeaseNext("d", kT0 + absl::Minutes(5));
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ(lease->entry.attempts, 1u);
}

TEST(StoreTest, DeadLettersLeaveTheQueueDurably) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("x", Level::kHigh)}).status.ok());
    auto lease = store->LeaseNext("d", kT0);
    ASSERT_TRUE(store->DeadLetter(*lease, "HTTP 422: invalid").ok());
    EXPECT_EQ(store->QueuedEntries(), 0);
    EXPECT_EQ(store->DeadLetterCount(), 1);
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->QueuedEntries(), 0);
  EXPECT_EQ(store->DeadLetterCount(), 1);
}

TEST(StoreTest, OldEntriesAgeAheadOfFreshUrgentOnes) {
  testing::TempDir dir;
  StoreOptions options;
  options.aging_step = absl::Minutes(10);
  auto store = OpenStore(dir.path(), kT0, options);
  ASSERT_TRUE(SubmitSync(*store, {Msg("old-low", Level::kLow)}, kT0).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("fresh-urgent", Level::kUrgent)}, kT0 + absl::Minutes(40)).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("fresh-high", Level::kHigh)}, kT0 + absl::Minutes(40)).status.ok());
  // After 40 minutes (4 steps) the low entry ranks as urgent and is older than both.
  EXPECT_EQ(DrainIds(*store, "d", kT0 + absl::Minutes(40)),
            (std::vector<std::string>{"old-low", "fresh-urgent", "fresh-high"}));
}

NewMessage InThread(const std::string& id, Level level, const std::string& thread) {
  NewMessage m = Msg(id, level);
  m.thread_key = ThreadKey("src", thread, "author-1");
  return m;
}

TEST(StoreTest, AThreadLeavesInArrivalOrderWhateverTheLevels) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(SubmitSync(*store, {InThread("t1-first", Level::kLow, "t1"),
                                  InThread("t1-second", Level::kUrgent, "t1"),
                                  Msg("alone", Level::kNormal),
                                  InThread("t1-third", Level::kHigh, "t1")})
                  .status.ok());
  // Only the head of t1 is leasable; the urgent follow-up waits for it.
  auto first = store->LeaseNext("d", kT0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->entry.message_key.substr(4), "alone");
  auto head = store->LeaseNext("d", kT0);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->entry.message_key.substr(4), "t1-first");
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value());
  EXPECT_EQ(store->NextDue("d"), absl::InfiniteFuture());
  // A retry keeps the head in place: the follow-ups still wait.
  ASSERT_TRUE(store->RetryLater(*head, kT0 + absl::Seconds(5), "HTTP 503").ok());
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value());
  head = store->LeaseNext("d", kT0 + absl::Seconds(5));
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->entry.message_key.substr(4), "t1-first");
  ASSERT_TRUE(store->Ack(*head).ok());
  // A dead-lettered head releases the next one too.
  auto second = store->LeaseNext("d", kT0);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->entry.message_key.substr(4), "t1-second");
  ASSERT_TRUE(store->DeadLetter(*second, "HTTP 422").ok());
  ASSERT_TRUE(store->Ack(*first).ok());
  EXPECT_EQ(DrainIds(*store, "d", kT0), std::vector<std::string>{"t1-third"});
}

// A follow-up that moved the conversation to legal waits for support's entry, which creates the
// thread's ticket: the owner's entries of a thread leave in order whatever their team. An
// informed team's entry does not wait for them.
TEST(StoreTest, AnOwnersEntriesOfAThreadLeaveInOrderAcrossTeams) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  NewMessage first = InThread("first", Level::kLow, "t");
  NewMessage moved = InThread("moved", Level::kUrgent, "t");
  moved.deliveries = {{"d", "legal", true}, {"d", "pr", false}};
  ASSERT_TRUE(SubmitSync(*store, {first, moved}).status.ok());
  auto informed = store->LeaseNext("d", kT0);  // urgent, and in a chain of its own
  ASSERT_TRUE(informed.has_value());
  EXPECT_EQ(informed->entry.team, "pr");
  auto head = store->LeaseNext("d", kT0);
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->entry.message_key.substr(4), "first");
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value()) << "legal's follow-up waits for the ticket";
  ASSERT_TRUE(store->Ack(*head, "ticket-7", true).ok());
  auto follow_up = store->LeaseNext("d", kT0);
  ASSERT_TRUE(follow_up.has_value());
  EXPECT_EQ(follow_up->entry.team, "legal");
  EXPECT_EQ(*TicketId(*store, *follow_up), "ticket-7");
}

TEST(StoreTest, ThreadOrderSurvivesRestart) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {InThread("a", Level::kLow, "t"), InThread("b", Level::kUrgent, "t"),
                                    InThread("c", Level::kNormal, "t"), Msg("z", Level::kHigh)})
                    .status.ok());
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"z", "a", "b", "c"}));
}

TEST(StoreTest, RemoteTicketIsRecordedWithTheAckAndSharedByTheThread) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {InThread("a", Level::kLow, "t"), InThread("b", Level::kLow, "t"),
                                    Msg("other", Level::kLow)})
                    .status.ok());
    auto a = store->LeaseNext("d", kT0);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(*TicketId(*store, *a), std::nullopt);
    ASSERT_TRUE(store->Ack(*a, "ticket-41").ok());
  }
  auto store = OpenStore(dir.path());
  auto b = store->LeaseNext("d", kT0);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->entry.message_key.substr(4), "b");
  EXPECT_EQ(*TicketId(*store, *b), "ticket-41");
  auto other = store->LeaseNext("d", kT0);
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(*TicketId(*store, *other), std::nullopt);
  // An informed team's entry in the same thread has a ticket of its own (a `separate`
  // destination)...
  Lease for_pr = *b;
  for_pr.entry.team = "pr";
  for_pr.entry.owner = false;
  EXPECT_EQ(*TicketId(*store, for_pr), std::nullopt);
  // ...but the owner's entries share the conversation's, whatever their team (an escalation
  // may move it), and it says the level and team it was filed at.
  Lease moved = *b;
  moved.entry.team = "legal";
  moved.entry.level = Level::kUrgent;
  EXPECT_EQ(**store->FindThreadTicket(moved), (ThreadTicket{"ticket-41", Level::kLow, "support"}));
  // Raised by a follow-up: recorded at its new level and team, and still not a creation.
  ASSERT_TRUE(store->Ack(moved, "ticket-41", /*created=*/false).ok());
  EXPECT_EQ(**store->FindThreadTicket(*b), (ThreadTicket{"ticket-41", Level::kUrgent, "legal"}));
}

// A reply entry (the acknowledgement to the customer) is marked, synced, before it is sent, and
// stays leased; a restart finds the mark. Its record of the conversation's last
// acknowledgement is apart from any ticket of the thread at the same destination.
TEST(StoreTest, RepliesAreMarkedBeforeSendingAndRecordedApartFromTickets) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    NewMessage m = InThread("a", Level::kLow, "t");
    m.deliveries = {{"d", "support", true, false}, {"d", "support", true, true}};
    m.sla_deadline = kT0 + absl::Minutes(5);
    ASSERT_TRUE(SubmitSync(*store, {m}).status.ok());
    auto ticket = store->LeaseNext("d", kT0);
    ASSERT_TRUE(ticket.has_value());
    EXPECT_FALSE(ticket->entry.reply);
    ASSERT_TRUE(store->Ack(*ticket, "ticket-7").ok());
    auto reply = store->LeaseNext("d", kT0);
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->entry.reply);
    EXPECT_EQ(reply->entry.sla_deadline_unix_ms, 0) << "a reply is no ticket: no SLA";
    EXPECT_EQ(*TicketId(*store, *reply), std::nullopt) << "the thread's ticket is not its acknowledgement";
    ASSERT_TRUE(store->MarkSending(*reply, "sending").ok());
    EXPECT_FALSE(store->LeaseNext("d", kT0).has_value()) << "still leased";
  }
  {
    auto store = OpenStore(dir.path());
    auto reply = store->LeaseNext("d", kT0);
    ASSERT_TRUE(reply.has_value());
    EXPECT_TRUE(reply->entry.reply);
    EXPECT_EQ(reply->entry.last_error, "sending");
    EXPECT_EQ(reply->entry.attempts, 1u);
    ASSERT_TRUE(store->Ack(*reply, "wamid.1", /*created=*/false).ok());
    const absl::StatusOr<std::optional<ThreadTicket>> last = store->FindThreadTicket(*reply);
    ASSERT_TRUE(last.ok() && last->has_value());
    EXPECT_EQ((*last)->id, "wamid.1");
    EXPECT_LT(absl::AbsDuration(absl::Now() - (*last)->recorded_at), absl::Minutes(1)) << "the store's clock";
    Lease ticket = *reply;
    ticket.entry.reply = false;
    EXPECT_EQ(*TicketId(*store, ticket), "ticket-7");
    const std::vector<MessageDelivery> deliveries = store->Deliveries(MessageKey("src", "a"));
    ASSERT_EQ(deliveries.size(), 2u);
    EXPECT_EQ(deliveries[0].entry.reply + deliveries[1].entry.reply, 1);
  }
}

TEST(StoreTest, AProbeLeasesTheEntryDueSoonestAndReturnsItUnchanged) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(SubmitSync(*store, {Msg("a", Level::kLow), Msg("b", Level::kUrgent)}).status.ok());
  for (const char* id : {"b", "a"}) {
    const auto lease = store->LeaseNext("d", kT0);
    ASSERT_TRUE(lease.has_value());
    EXPECT_EQ(lease->entry.message_key, MessageKey("src", id));
    EXPECT_FALSE(lease->early);
    // Back-offs of their own: b in 10 minutes, a in 5.
    const absl::Duration wait = std::string(id) == "b" ? absl::Minutes(10) : absl::Minutes(5);
    ASSERT_TRUE(store->RetryLater(*lease, kT0 + wait, "HTTP 503").ok());
  }
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value()) << "nothing is due";
  auto probe = store->LeaseNext("d", kT0, /*probe=*/true);
  ASSERT_TRUE(probe.has_value());
  EXPECT_TRUE(probe->early);
  EXPECT_EQ(probe->entry.message_key, MessageKey("src", "a")) << "the one due soonest";
  EXPECT_EQ(store->NextDue("d"), kT0 + absl::Minutes(10)) << "b stays on its schedule";
  // The probe failed too: back on its own schedule, its attempts unchanged.
  ASSERT_TRUE(store->Return(*probe).ok());
  EXPECT_EQ(store->NextDue("d"), kT0 + absl::Minutes(5));
  probe = store->LeaseNext("d", kT0 + absl::Minutes(5));
  ASSERT_TRUE(probe.has_value());
  EXPECT_FALSE(probe->early);
  EXPECT_EQ(probe->entry.attempts, 1u);
  EXPECT_TRUE(store->Ack(*probe).ok());
}

TEST(StoreTest, DestinationPauseSurvivesRestart) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    EXPECT_EQ(*store->DestinationPause("zendesk"), absl::InfinitePast());
    ASSERT_TRUE(store->SetDestinationPause("zendesk", kT0 + absl::Seconds(30)).ok());
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(*store->DestinationPause("zendesk"), kT0 + absl::Seconds(30));
  EXPECT_EQ(*store->DestinationPause("slack"), absl::InfinitePast());
}

TEST(StoreTest, DeadLettersAreListedAndRequeuedDurably) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("a", Level::kHigh), Msg("b", Level::kLow), Msg("c", Level::kUrgent),
                                    Msg("z", Level::kLow, {"other"})})
                    .status.ok());
    for (int i = 0; i < 3; ++i) {
      auto lease = store->LeaseNext("d", kT0);
      ASSERT_TRUE(lease.has_value());
      ASSERT_TRUE(store->DeadLetter(*lease, "HTTP 422: invalid").ok());
    }
    auto other = store->LeaseNext("other", kT0);
    ASSERT_TRUE(store->DeadLetter(*other, "HTTP 401").ok());
    const std::vector<DeadEntry> dead = store->DeadLetters("d", 10);
    ASSERT_EQ(dead.size(), 3u);
    EXPECT_EQ(dead[0].entry.message_key.substr(4), "a") << "arrival order";
    EXPECT_EQ(dead[0].entry.last_error, "HTTP 422: invalid");
    EXPECT_EQ(dead[0].entry.attempts, 1u);
    EXPECT_EQ(store->DeadLetters("", 10).size(), 4u);
    EXPECT_EQ(store->DeadLetters("", 2).size(), 2u) << "bounded by the limit";

    EXPECT_EQ(store->Requeue("d", 999).status().code(), absl::StatusCode::kNotFound);
    const absl::StatusOr<int64_t> one = store->Requeue("d", dead[1].seq);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(*one, 1);
    EXPECT_EQ(store->DeadLetterCount(), 3);
    EXPECT_EQ(store->QueuedEntries(), 1);
  }
  auto store = OpenStore(dir.path());  // the requeue was durable
  auto b = store->LeaseNext("d", kT0);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->entry.message_key.substr(4), "b");
  EXPECT_EQ(b->entry.attempts, 0u) << "a fresh start";
  EXPECT_EQ(*store->Requeue("d", std::nullopt), 2);
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"c", "a"}));
  EXPECT_EQ(store->DeadLetterCount(), 1) << "the other destination's letter stays";
}

TEST(StoreTest, QueueStatsGiveTheOldestEntryPerTeamAndLevel) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_TRUE(SubmitSync(*store, {Msg("a", Level::kHigh)}, kT0).status.ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("b", Level::kHigh)}, kT0 + absl::Seconds(10)).status.ok());
  auto lease = store->LeaseNext("d", kT0 + absl::Seconds(20));  // leased entries still count
  ASSERT_TRUE(lease.has_value());
  const std::vector<QueueDepth> oldest = store->OldestEntries();
  ASSERT_EQ(oldest.size(), 1u);
  EXPECT_EQ(oldest[0].level, Level::kHigh);
  EXPECT_EQ(oldest[0].oldest_enqueued_unix_ms, absl::ToUnixMillis(kT0)) << "the leased entry is the oldest";
  const std::vector<QueueDepth> stats = store->QueueStats(kT0 + absl::Seconds(20));
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].team, "support");
  EXPECT_EQ(stats[0].entries, 2);
  EXPECT_EQ(stats[0].oldest_enqueued_unix_ms, absl::ToUnixMillis(kT0));
}

// (at risk, overdue) of destination "d", team "support", from Depths and QueueStats, which
// must agree.
std::pair<int64_t, int64_t> SlaCounts(Store& store, absl::Time now) {
  std::pair<int64_t, int64_t> depths{-1, -1}, stats{-1, -1};
  for (const QueueDepth& d : store.Depths(now)) {
    if (d.destination == "d" && d.team == "support") depths = {d.sla_at_risk, d.sla_overdue};
  }
  for (const QueueDepth& d : store.QueueStats(now)) {
    if (d.destination == "d" && d.team == "support") stats = {d.sla_at_risk, d.sla_overdue};
  }
  EXPECT_EQ(depths, stats) << "at " << now;
  return depths;
}

TEST(StoreTest, SlaAtRiskAndOverdueCountQueuedOwnerEntries) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  NewMessage a = Msg("a", Level::kHigh);
  a.sla_deadline = kT0 + absl::Hours(1);  // at risk from 45 min
  a.deliveries.push_back({"d", "pr", false});  // informed: the SLA is not pr's
  NewMessage b = Msg("b", Level::kHigh);
  b.sla_deadline = kT0 + absl::Hours(2);  // at risk from 1 h 30
  NewMessage c = Msg("c", Level::kHigh);  // no deadline known
  ASSERT_TRUE(SubmitSync(*store, {a, b, c}).status.ok());

  using Counts = std::pair<int64_t, int64_t>;
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(30)), Counts(0, 0));
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(46)), Counts(1, 0));
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(61)), Counts(0, 1));
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(91)), Counts(1, 1));
  for (const QueueDepth& d : store->Depths(kT0 + absl::Hours(3))) {
    if (d.team == "pr") {
      EXPECT_EQ(d.sla_overdue, 0) << "informed entries carry no SLA";
    }
  }
  // Delivered (even late), it no longer counts; retries keep counting.
  auto lease = store->LeaseNext("d", kT0 + absl::Minutes(91));
  ASSERT_TRUE(lease.has_value());
  ASSERT_EQ(lease->entry.message_key, MessageKey("src", "a"));
  EXPECT_EQ(lease->entry.sla_deadline_unix_ms, absl::ToUnixMillis(a.sla_deadline));
  ASSERT_TRUE(store->Ack(*lease).ok());
  lease = store->LeaseNext("d", kT0 + absl::Minutes(91));
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(store->RetryLater(*lease, kT0 + absl::Hours(5), "HTTP 503").ok());
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(91)), Counts(1, 0));

  // The deadlines are stored: a restart counts the same.
  store.reset();
  store = OpenStore(dir.path(), kT0 + absl::Minutes(92));
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(92)), Counts(1, 0));
  EXPECT_EQ(SlaCounts(*store, kT0 + absl::Minutes(121)), Counts(0, 1));
}

TEST(StoreTest, DeliveriesOfAMessageWithTheirStateAndPosition) {
  testing::TempDir dir;
  auto store = OpenStore(dir.path());
  NewMessage m = InThread("m", Level::kNormal, "t");
  m.deliveries.push_back({"slack", "pr", false});
  ASSERT_TRUE(SubmitSync(*store, {Msg("u1", Level::kUrgent), Msg("n0", Level::kNormal), m,
                                  InThread("m-follow-up", Level::kUrgent, "t")})
                  .status.ok());
  std::vector<MessageDelivery> d = store->Deliveries(MessageKey("src", "m"));
  ASSERT_EQ(d.size(), 2u);
  const auto find = [&](const std::string& destination) {
    return *std::find_if(d.begin(), d.end(), [&](const auto& x) { return x.destination == destination; });
  };
  EXPECT_EQ(find("d").state, "queued");
  EXPECT_EQ(find("d").position, 3) << "behind the urgent one and the older normal one";
  EXPECT_EQ(find("slack").position, 1);
  EXPECT_EQ(find("slack").entry.team, "pr");
  EXPECT_EQ(store->Deliveries(MessageKey("src", "m-follow-up")).at(0).state, "waiting_for_thread");

  auto urgent = store->LeaseNext("d", kT0);
  EXPECT_EQ(store->Deliveries(MessageKey("src", "u1")).at(0).state, "in_flight");
  const absl::Time before_ack = absl::FromUnixMillis(absl::ToUnixMillis(absl::Now()));
  ASSERT_TRUE(store->Ack(*urgent, "ZD-7").ok());
  const absl::Time after_ack = absl::Now();
  d = store->Deliveries(MessageKey("src", "u1"));
  ASSERT_EQ(d.size(), 1u) << "delivered: recorded";
  EXPECT_EQ(d.at(0).state, "delivered");
  EXPECT_EQ(d.at(0).destination, "d");
  EXPECT_EQ(d.at(0).entry.attempts, 1u);
  EXPECT_EQ(d.at(0).entry.team, "support");
  EXPECT_TRUE(d.at(0).entry.owner);
  EXPECT_EQ(d.at(0).remote_ticket, "ZD-7");
  EXPECT_GE(d.at(0).delivered_at, before_ack);
  EXPECT_LE(d.at(0).delivered_at, after_ack);
  EXPECT_EQ(store->Deliveries(MessageKey("src", "m")).size(), 2u);
  auto n0 = store->LeaseNext("d", kT0);
  ASSERT_TRUE(store->RetryLater(*n0, kT0 + absl::Minutes(1), "HTTP 503").ok());
  d = store->Deliveries(MessageKey("src", "n0"));
  EXPECT_EQ(d.at(0).state, "retrying");
  EXPECT_EQ(d.at(0).entry.last_error, "HTTP 503");
  auto mine = store->LeaseNext("d", kT0);
  EXPECT_EQ(mine->entry.message_key, MessageKey("src", "m"));
  ASSERT_TRUE(store->DeadLetter(*mine, "HTTP 422").ok());
  d = store->Deliveries(MessageKey("src", "m"));
  EXPECT_EQ(find("d").state, "dead_letter");
  ASSERT_EQ(*store->Requeue("d", std::nullopt), 1);
  d = store->Deliveries(MessageKey("src", "m"));
  EXPECT_EQ(find("d").state, "waiting_for_thread") << "requeued at the end of its thread";
  EXPECT_EQ(store->Deliveries(MessageKey("src", "m-follow-up")).at(0).state, "queued");
}

// A database written before the by_message index (no index records, no marker) gets the
// index on its first open, for queued and dead entries alike.
TEST(StoreTest, DatabasesWithoutTheMessageIndexGetItOnOpen) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("queued", Level::kNormal), Msg("dead", Level::kUrgent)}).status.ok());
    auto lease = store->LeaseNext("d", kT0);
    ASSERT_EQ(lease->entry.message_key, MessageKey("src", "dead"));
    ASSERT_TRUE(store->DeadLetter(*lease, "HTTP 422").ok());
  }
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.path(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), dir.path(), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    int dropped = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "meta") {
        ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[i], "by_message_built").ok());
      }
      if (names[i] != "by_message") continue;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
      for (it->SeekToFirst(); it->Valid(); it->Next(), ++dropped) {
        ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), handles[i], it->key()).ok());
      }
    }
    EXPECT_EQ(dropped, 2);
    for (rocksdb::ColumnFamilyHandle* handle : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  auto store = OpenStore(dir.path());
  std::vector<MessageDelivery> d = store->Deliveries(MessageKey("src", "queued"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].state, "queued");
  d = store->Deliveries(MessageKey("src", "dead"));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].state, "dead_letter");
  EXPECT_EQ(d[0].entry.last_error, "HTTP 422");
}

TEST(StoreTest, ManualPauseHoldsUntilResumedAcrossRestarts) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    EXPECT_FALSE(*store->ManualPause("zendesk"));
    ASSERT_TRUE(store->SetManualPause("zendesk", true).ok());
  }
  auto store = OpenStore(dir.path());
  EXPECT_TRUE(*store->ManualPause("zendesk"));
  ASSERT_TRUE(store->SetManualPause("zendesk", false).ok());
  EXPECT_FALSE(*store->ManualPause("zendesk"));
}

TEST(StoreTest, FullQueueRefusesNewRequests) {
  testing::TempDir dir;
  StoreOptions options;
  options.max_queued_entries = 2;
  auto store = OpenStore(dir.path(), kT0, options);
  EXPECT_TRUE(SubmitSync(*store, {Msg("a", Level::kLow), Msg("b", Level::kLow)}).status.ok());
  const IngestResult refused = SubmitSync(*store, {Msg("c", Level::kLow)});
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store->GetMessage(MessageKey("src", "c")).status().code(), absl::StatusCode::kNotFound);
}

// A file system whose writes start failing on demand, as a full or broken disk would.
class FailingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingFileSystem(std::shared_ptr<rocksdb::FileSystem> target)
      : FileSystemWrapper(std::move(target)) {}
  const char* Name() const override { return "FailingFileSystem"; }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, std::atomic<bool>* fail)
        : FSWritableFileOwnerWrapper(std::move(file)), fail_(fail) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (*fail_) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
      return FSWritableFileOwnerWrapper::Append(data, options, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
      if (*fail_) return rocksdb::IOStatus::NoSpace("injected: no space left on device");
      return FSWritableFileOwnerWrapper::Sync(options, dbg);
    }

   private:
    std::atomic<bool>* fail_;
  };

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, &file, dbg);
    if (s.ok()) *result = std::make_unique<File>(std::move(file), &fail);
    return s;
  }

  // Reads of table files fail while `fail_reads` is set (an I/O error on a bad sector).
  class Readable : public rocksdb::FSRandomAccessFileOwnerWrapper {
   public:
    Readable(std::unique_ptr<rocksdb::FSRandomAccessFile> file, std::atomic<bool>* fail)
        : FSRandomAccessFileOwnerWrapper(std::move(file)), fail_(fail) {}
    rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                           rocksdb::Slice* result, char* scratch,
                           rocksdb::IODebugContext* dbg) const override {
      if (*fail_) return rocksdb::IOStatus::IOError("injected: read error");
      return FSRandomAccessFileOwnerWrapper::Read(offset, n, options, result, scratch, dbg);
    }
    rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                                const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
      if (*fail_) return rocksdb::IOStatus::IOError("injected: read error");
      return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, options, dbg);
    }

   private:
    std::atomic<bool>* fail_;
  };

  rocksdb::IOStatus NewRandomAccessFile(const std::string& name, const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSRandomAccessFile> file;
    rocksdb::IOStatus s = target()->NewRandomAccessFile(name, options, &file, dbg);
    if (s.ok()) *result = std::make_unique<Readable>(std::move(file), &fail_reads);
    return s;
  }

  std::atomic<bool> fail{false};
  std::atomic<bool> fail_reads{false};
};

TEST(StoreTest, StorageFailureIsReportedAndNothingIsHalfStored) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  auto fs = std::make_shared<FailingFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  {
    StoreOptions options;
    options.env = env.get();
    auto store = OpenStore(dir.path(), kT0, options);
    ASSERT_TRUE(SubmitSync(*store, {Msg("before", Level::kLow)}).status.ok());
    fs->fail = true;
    const IngestResult failed = SubmitSync(*store, {Msg("x", Level::kUrgent), Msg("y", Level::kLow)});
    EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable) << failed.status;
    EXPECT_EQ(store->QueuedEntries(), 1);
  }
  fs->fail = false;
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->QueuedEntries(), 1);
  EXPECT_EQ(store->GetMessage(MessageKey("src", "x")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->GetMessage(MessageKey("src", "y")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"before"}));
}

}  // namespace
}  // namespace triage::storage

namespace triage::storage {
namespace {

TEST(StoreLabelsTest, ATicketCreatedHereLeadsBackToItsMessageAndLabelsPersist) {
  testing::TempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_TRUE(SubmitSync(*store, {Msg("m1", Level::kNormal, {"zendesk"}), Msg("m2", Level::kLow, {"zendesk"})}).status.ok());
    auto first = store->LeaseNext("zendesk", kT0);
    ASSERT_TRUE(first.has_value());
    ASSERT_TRUE(store->Ack(*first, "1001").ok());
    auto second = store->LeaseNext("zendesk", kT0);
    ASSERT_TRUE(second.has_value());
    ASSERT_TRUE(store->Ack(*second).ok());  // no ticket recorded: no origin either

    const absl::StatusOr<TicketOrigin> origin = store->FindTicketOrigin("zendesk", "1001");
    ASSERT_TRUE(origin.ok()) << origin.status();
    EXPECT_EQ(origin->message_key, first->entry.message_key);
    EXPECT_EQ(origin->ticket_json, first->entry.ticket_json);
    EXPECT_TRUE(absl::IsNotFound(store->FindTicketOrigin("zendesk", "1002").status()));
    EXPECT_TRUE(absl::IsNotFound(store->FindTicketOrigin("freshdesk", "1001").status()));

    EXPECT_EQ(store->LabelCount(), 0);
    ASSERT_TRUE(store->PutLabel(MessageKey("src", "m1"), R"({"team":"billing"})").ok());
    ASSERT_TRUE(store->PutLabel(MessageKey("src", "m1"), R"({"team":"sales"})").ok());  // replaced
    ASSERT_TRUE(store->PutLabel(MessageKey("src", "m2"), R"({"level":"low"})").ok());
    EXPECT_EQ(store->LabelCount(), 2);
    EXPECT_EQ(*store->Label(MessageKey("src", "m1")), std::optional<std::string>(R"({"team":"sales"})"));
    EXPECT_FALSE(store->Label(MessageKey("src", "none"))->has_value());
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->LabelCount(), 2);
  std::string last;
  auto page = store->Labels("", 1, &last);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (std::vector<std::string>{R"({"team":"sales"})"}));
  EXPECT_EQ(last, MessageKey("src", "m1"));
  page = store->Labels(last, 10, &last);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(*page, (std::vector<std::string>{R"({"level":"low"})"}));
  page = store->Labels(last, 10, &last);
  EXPECT_TRUE(page->empty());
  EXPECT_TRUE(last.empty());
}

TEST(StoreLabelsTest, TicketIdsAndOriginsExpireWithTheirWindowsOnTheStoresClock) {
  testing::TempDir dir;
  ManualClock clock(kT0);
  StoreOptions options;
  options.clock = &clock;
  options.dedup_window = absl::Hours(24 * 8);
  options.ticket_origin_window = absl::Hours(24 * 90);
  auto store = OpenStore(dir.path(), kT0, options);
  NewMessage m = Msg("m", Level::kHigh);
  m.thread_key = "thread";
  ASSERT_TRUE(SubmitSync(*store, {m}).status.ok());
  const auto lease = store->LeaseNext("d", kT0);
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(store->Ack(*lease, "ticket-9").ok());

  clock.Advance(absl::Hours(24 * 8) - absl::Minutes(1));
  EXPECT_EQ(*TicketId(*store, *lease), std::optional<std::string>("ticket-9"));
  clock.Advance(absl::Minutes(2));
  EXPECT_EQ(*TicketId(*store, *lease), std::nullopt) << "past the dedup window: a new ticket";
  EXPECT_TRUE(store->FindTicketOrigin("d", "ticket-9").ok()) << "the origin window is longer";

  clock.Advance(absl::Hours(24 * 82));
  const absl::StatusOr<TicketOrigin> expired = store->FindTicketOrigin("d", "ticket-9");
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kNotFound) << expired.status();
}

TEST(StoreLabelsTest, TheTicketOriginWindowHasAFloor) {
  testing::TempDir dir;
  StoreOptions options;
  options.path = dir.path();
  options.ticket_origin_window = absl::Seconds(59);
  const auto store = Store::Open(options, kT0);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("ticket origin window"), std::string::npos) << store.status();
}

}  // namespace
}  // namespace triage::storage

namespace triage::storage {
namespace {

// Polls `done` until it holds or 10 s pass (storage resumes on its own writer thread).
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// A FailingFileSystem behind an Env, and store options that use it and resume quickly.
struct FailingDisk {
  std::shared_ptr<FailingFileSystem> fs = std::make_shared<FailingFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions Options() const {
    StoreOptions options;
    options.env = env.get();
    options.recovery_interval = absl::Milliseconds(20);
    return options;
  }
};

TEST(StoreHealthTest, AFullDiskIsAStateRefusedAtOnceAndResumedWhenSpaceReturns) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  FailingDisk disk;
  StoreOptions options = disk.Options();
  auto& fs = disk.fs;
  std::mutex log_mu;
  std::vector<std::string> log;
  options.log = [&](int, absl::string_view line) {
    std::lock_guard lock(log_mu);
    log.emplace_back(line);
  };
  auto store = OpenStore(dir.path(), kT0, options);
  ASSERT_TRUE(SubmitSync(*store, {Msg("before", Level::kLow)}).status.ok());
  // RocksDB's info log comes to the callback, never to a LOG file on the data disk.
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/LOG"));
  {
    std::lock_guard lock(log_mu);
    EXPECT_FALSE(log.empty());
  }
  EXPECT_TRUE(store->Health().available);

  fs->fail = true;
  IngestResult failed = SubmitSync(*store, {Msg("x", Level::kUrgent)});
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable);
  const StorageHealth down = store->Health();
  EXPECT_FALSE(down.available);
  EXPECT_FALSE(store->Available());
  EXPECT_NE(down.error.find("no space"), std::string::npos) << down.error;
  EXPECT_GE(down.errors, 1);
  // While down, requests are refused at once, without touching the disk.
  failed = SubmitSync(*store, {Msg("y", Level::kUrgent)});
  EXPECT_EQ(failed.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(failed.status.message()).find("storage unavailable"), std::string::npos);

  fs->fail = false;
  ASSERT_TRUE(Eventually([&] { return store->Available(); }));
  EXPECT_EQ(store->Health().recoveries, 1);
  ASSERT_TRUE(SubmitSync(*store, {Msg("after", Level::kLow)}).status.ok());
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"before", "after"}));
}

TEST(StoreHealthTest, AnAckThatCannotBeWrittenKeepsTheEntryLeasedUntilItIs) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  FailingDisk disk;
  StoreOptions options = disk.Options();
  auto& fs = disk.fs;
  {
    auto store = OpenStore(dir.path(), kT0, options);
    ASSERT_TRUE(SubmitSync(*store, {Msg("a", Level::kLow), Msg("b", Level::kLow)}).status.ok());
    const auto a = store->LeaseNext("d", kT0);
    ASSERT_TRUE(a.has_value());
    fs->fail = true;
    EXPECT_FALSE(store->Ack(*a, "ticket-1").ok());
    // Delivered but not recorded: not leased again (no duplicate), still counted as queued.
    const auto next = store->LeaseNext("d", kT0);
    ASSERT_TRUE(next.has_value());
    EXPECT_EQ(next->entry.message_key, MessageKey("src", "b"));
    EXPECT_FALSE(store->DeadLetter(*next, "rejected").ok());
    EXPECT_FALSE(store->LeaseNext("d", kT0).has_value());
    EXPECT_EQ(store->QueuedEntries(), 2);
    fs->fail = false;
    ASSERT_TRUE(Eventually([&] { return store->Available(); }));
    ASSERT_TRUE(store->Ack(*a, "ticket-1").ok());  // recorded now, ticket included
    EXPECT_EQ(*TicketId(*store, *a), std::optional<std::string>("ticket-1"));
    EXPECT_EQ(store->QueuedEntries(), 1);
    // `b` stays leased until its dead letter is written; here the store closes first.
  }
  // A restart redelivers what was never recorded, once.
  auto store = OpenStore(dir.path());
  EXPECT_EQ(DrainIds(*store, "d", kT0), (std::vector<std::string>{"b"}));
}

TEST(StoreHealthTest, ReadErrorsAreErrorsNeverAbsence) {
  ROCKSDB_ONLY();
  testing::TempDir dir;
  FailingDisk disk;
  auto store = OpenStore(dir.path(), kT0, disk.Options());
  NewMessage first = Msg("first", Level::kLow);
  first.thread_key = "thread";
  first.conversation_key = "conversation";
  first.conversation = {"billing", Level::kHigh};
  ASSERT_TRUE(SubmitSync(*store, {first}).status.ok());
  const auto lease = store->LeaseNext("d", kT0);
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(store->Ack(*lease, "ticket-7").ok());
  ASSERT_TRUE(store->SetManualPause("d", true).ok());
  ASSERT_TRUE(store->SetDestinationPause("d", kT0 + absl::Minutes(1)).ok());
  ASSERT_TRUE(SubmitSync(*store, {Msg("second", Level::kLow)}).status.ok());
  ASSERT_TRUE(store->Compact().ok());  // everything in table files, nothing in memory

  disk.fs->fail_reads = true;
  EXPECT_EQ(TicketId(*store, *lease).status().code(), absl::StatusCode::kUnavailable)
      << "an unreadable ticket is not 'no ticket' (that would open a second one)";
  EXPECT_EQ(store->ManualPause("d").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->DestinationPause("d").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->ConversationTeam("conversation", kT0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store->ConversationTeamInMemory("conversation", kT0).has_value())
      << "the answer needs the disk";
  // An entry that cannot be read is not leased, and not lost: due again after a while.
  EXPECT_FALSE(store->LeaseNext("d", kT0).has_value());
  EXPECT_EQ(store->NextDue("d"), kT0 + absl::Milliseconds(20));
  EXPECT_EQ(store->QueuedEntries(), 1);

  disk.fs->fail_reads = false;
  EXPECT_EQ(*TicketId(*store, *lease), std::optional<std::string>("ticket-7"));
  EXPECT_TRUE(*store->ManualPause("d"));
  EXPECT_EQ(*store->DestinationPause("d"), kT0 + absl::Minutes(1));
  EXPECT_EQ(*store->ConversationTeam("conversation", kT0),
            std::optional<router::ConversationOwner>({"billing", Level::kHigh}));
  // Read once, the block is cached: the memory-only read answers now.
  const auto cached = store->ConversationTeamInMemory("conversation", kT0);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(**cached, std::optional<router::ConversationOwner>({"billing", Level::kHigh}));
  EXPECT_EQ(DrainIds(*store, "d", kT0 + absl::Seconds(1)), (std::vector<std::string>{"second"}));
}

TEST(StoreHealthTest, OpeningOnAFullDiskFailsWithAnErrorNotAnAbort) {
  testing::TempDir dir;
  auto fs = std::make_shared<FailingFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  fs->fail = true;
  StoreOptions options;
  options.path = dir.path();
  options.env = env.get();
  const auto store = Store::Open(options, kT0);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
}

// What the parser could not read is kept raw in the same synced write as the request's
// messages, listed oldest first, kept across restarts, released once replayed, and gone after
// the retention.
TEST(StoreQuarantineTest, KeptWithTheRequestListedReleasedAndExpired) {
  testing::TempDir dir;
  ManualClock clock(kT0);
  StoreOptions options;
  options.clock = &clock;
  options.quarantine_retention = absl::Hours(24 * 14);
  auto store = OpenStore(dir.path(), kT0, options);
  auto submit = [&](std::vector<NewMessage> messages, std::string body) {
    std::promise<IngestResult> done;
    store->Submit(std::move(messages), clock.Now(), [&](IngestResult r) { done.set_value(std::move(r)); },
                  QuarantineRecord{0, "meta", "could_not_read", "WhatsApp message type 'order'", std::move(body)});
    return done.get_future().get();
  };
  const IngestResult first = submit({Msg("readable", Level::kNormal)}, std::string("{\"raw\":\0\"bytes\"}", 16));
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(first.stored, 1) << "what could be read is stored as usual";
  EXPECT_EQ(first.quarantine_id, 1u);
  clock.Advance(absl::Hours(1));
  EXPECT_EQ(submit({}, "second").quarantine_id, 2u);

  auto listed = store->ListQuarantine(0, 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->at(0).id, 1u);
  EXPECT_EQ(listed->at(0).record.source, "meta");
  EXPECT_EQ(listed->at(0).record.reason, "could_not_read");
  EXPECT_EQ(listed->at(0).record.detail, "WhatsApp message type 'order'");
  EXPECT_EQ(listed->at(0).record.body, std::string("{\"raw\":\0\"bytes\"}", 16)) << "byte for byte";
  EXPECT_EQ(listed->at(0).record.received_unix_ms, absl::ToUnixMillis(kT0));
  EXPECT_EQ(store->ListQuarantine(1, 10)->size(), 1u) << "after id 1";
  EXPECT_EQ(store->ListQuarantine(0, 1)->size(), 1u) << "limit";

  // Ids go on after a restart.
  store.reset();
  store = OpenStore(dir.path(), clock.Now(), options);
  EXPECT_EQ(submit({}, "third").quarantine_id, 3u);
  ASSERT_TRUE(store->ReleaseQuarantined(2).ok());
  EXPECT_FALSE(store->FindQuarantined(2)->has_value());
  ASSERT_TRUE(store->FindQuarantined(3)->has_value());
  EXPECT_EQ((*store->FindQuarantined(3))->record.body, "third");

  // After the retention: neither listed nor found, and compaction drops it.
  clock.Advance(absl::Hours(24 * 14) - absl::Minutes(30));
  EXPECT_EQ(store->ListQuarantine(0, 10)->size(), 1u) << "the first is past 14 days, the third is not";
  EXPECT_FALSE(store->FindQuarantined(1)->has_value());
}

}  // namespace
}  // namespace triage::storage
