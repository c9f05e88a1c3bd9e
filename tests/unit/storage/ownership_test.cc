#include "storage/jetstream/ownership.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "storage/jetstream/jetstream_backend.h"
#include "storage/jetstream/nats.h"
#include "storage/store.h"
#include "tests/support/backends.h"

namespace triage::storage {
namespace {

using jetstream::PreferredOwner;

TEST(OwnershipTest, EveryNodeAgreesAndTheQueuesSpreadEvenly) {
  const std::vector<std::string> members = {"node-a", "node-b", "node-c"};
  const std::vector<std::string> reversed(members.rbegin(), members.rend());
  std::map<std::string, int> owned;
  for (int i = 0; i < 3000; ++i) {
    const std::string destination = absl::StrCat("dest", i);
    const std::string owner = PreferredOwner(members, destination);
    EXPECT_EQ(PreferredOwner(reversed, destination), owner) << "the order members are listed in does not matter";
    ++owned[owner];
  }
  ASSERT_EQ(owned.size(), 3u);
  for (const auto& [node, count] : owned) {
    EXPECT_GT(count, 850) << node;  // 1,000 each on average
    EXPECT_LT(count, 1150) << node;
  }
  EXPECT_EQ(PreferredOwner({}, "d"), "");
}

TEST(OwnershipTest, OnlyTheQueuesOfANodeThatLeavesOrJoinsMove) {
  const std::vector<std::string> three = {"a", "b", "c"};
  const std::vector<std::string> two = {"a", "b"};
  const std::vector<std::string> four = {"a", "b", "c", "d"};
  int moved_to_d = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string destination = absl::StrCat("q", i);
    const std::string before = PreferredOwner(three, destination);
    if (before != "c") {
      EXPECT_EQ(PreferredOwner(two, destination), before) << "c left: " << destination;
    }
    const std::string joined = PreferredOwner(four, destination);
    if (joined != before) {
      EXPECT_EQ(joined, "d") << "only the newcomer takes queues: " << destination;
      ++moved_to_d;
    }
  }
  EXPECT_GT(moved_to_d, 350);  // about a quarter
  EXPECT_LT(moved_to_d, 650);
}

TEST(OwnershipTest, AHolderFencesItselfAtHalfTheTtl) {
  const jetstream::LeaseTiming timing{.ttl = absl::Seconds(6)};
  const absl::Time renewed = absl::FromUnixSeconds(1000);
  EXPECT_EQ(timing.tick(), absl::Seconds(1));
  EXPECT_TRUE(timing.Holds(renewed, renewed + absl::Milliseconds(2999)));
  EXPECT_FALSE(timing.Holds(renewed, renewed + absl::Seconds(3)));
}

// Two stores (two nodes) on one prefix of a real 3-node cluster.
class TwoNodesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::BackendUnderTest() != "jetstream") GTEST_SKIP() << "run with the JetStream store tests";
    if (testing::SharedCluster() == nullptr) {
      if (testing::NatsCluster::Required()) FAIL() << "no NATS cluster: nats-server is missing or its cluster did not start (stderr)";
      GTEST_SKIP() << "nats-server is not installed";
    }
    prefix_ = absl::StrCat("O", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    prefix_.resize(std::min<size_t>(prefix_.size(), 40));
  }

  // Node `name` as a store; `backend` (if given) views its backend.
  std::unique_ptr<Store> Open(const std::string& name, JetStreamBackend** backend = nullptr,
                              absl::Duration lease_ttl = absl::Seconds(3) /* a tick every 0.5 s */) {
    JetStreamOptions jetstream;
    jetstream.connect.servers = testing::SharedCluster()->urls();
    jetstream.prefix = prefix_;
    jetstream.node = name;
    jetstream.leases.ttl = lease_ttl;
    StoreOptions options;
    options.path = "unused";
    // What ownership does, on stderr with the time and the node: read with a failure.
    options.log = [name](int, absl::string_view line) {
      std::cerr << absl::FormatTime("%H:%M:%E3S ", absl::Now(), absl::UTCTimeZone()) << name << ": " << line << "\n";
    };
    auto opened = JetStreamBackend::Open(jetstream, options);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return nullptr;
    if (backend != nullptr) *backend = opened->get();
    auto store = Store::Open(*std::move(opened), options, absl::Now());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Nodes "a" and "b", each with a view of its backend.
  struct Two {
    std::unique_ptr<Store> a, b;
    JetStreamBackend* backend_a = nullptr;
    JetStreamBackend* backend_b = nullptr;
  };
  Two OpenTwo() {
    Two two;
    two.a = Open("a", &two.backend_a);
    two.b = Open("b", &two.backend_b);
    return two;
  }

  static NewMessage Msg(const std::string& id, const std::string& destination, const std::string& thread = "") {
    NewMessage m;
    m.key = MessageKey("src", id);
    m.ticket_json = absl::StrCat("{\"id\":\"", id, "\"}");
    m.thread_key = thread;
    m.deliveries.push_back({destination, "support", true});
    return m;
  }

  static IngestResult Submit(Store& store, std::vector<NewMessage> messages) {
    std::promise<IngestResult> done;
    store.Submit(std::move(messages), absl::Now(), [&](IngestResult r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }

  // Leases and acknowledges on every node until `want` entries were delivered or 20 s passed:
  // the message ids per (node, destination) in lease order.
  static std::map<std::pair<int, std::string>, std::vector<std::string>> Deliver(
      const std::vector<Store*>& nodes, const std::vector<std::string>& destinations, size_t want) {
    std::map<std::pair<int, std::string>, std::vector<std::string>> delivered;
    size_t count = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (count < want && std::chrono::steady_clock::now() < deadline) {
      for (size_t n = 0; n < nodes.size(); ++n) {
        for (const std::string& destination : destinations) {
          while (std::optional<Lease> lease = nodes[n]->LeaseNext(destination, absl::Now())) {
            EXPECT_TRUE(nodes[n]->Ack(*lease).ok());
            delivered[{static_cast<int>(n), destination}].push_back(lease->entry.message_key.substr(4));
            ++count;
          }
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return delivered;
  }

  // Waits (10 s at most) until the two nodes own `queues` queues between them.
  static bool Settled(JetStreamBackend& a, JetStreamBackend& b, size_t queues) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (a.Owned().size() + b.Owned().size() != queues) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  std::string prefix_;
};

TEST_F(TwoNodesTest, EachEntryGoesToOneOwnerWhicheverNodeStoredIt) {
  auto [a, b, backend_a, backend_b] = OpenTwo();
  ASSERT_TRUE(a && b);
  const std::vector<std::string> destinations = {"d0", "d1", "d2", "d3", "d4", "d5"};
  std::set<std::string> stored;
  for (int i = 0; i < 60; ++i) {
    const std::string id = absl::StrCat("m", i);
    Store& via = i % 2 == 0 ? *a : *b;
    ASSERT_TRUE(Submit(via, {Msg(id, destinations[i % destinations.size()])}).status.ok());
    stored.insert(id);
  }
  // The same message at the other node: a duplicate, across nodes.
  const IngestResult again = Submit(*b, {Msg("m0", "d0")});
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(again.duplicates, 1);

  const auto delivered = Deliver({a.get(), b.get()}, destinations, stored.size());
  std::multiset<std::string> ids;
  std::map<std::string, std::set<int>> nodes_of;
  for (const auto& [where, list] : delivered) {
    ids.insert(list.begin(), list.end());
    nodes_of[where.second].insert(where.first);
  }
  EXPECT_EQ(ids, std::multiset<std::string>(stored.begin(), stored.end())) << "each entry delivered once";

  // Settled: each queue with the node the rank prefers, and only there.
  ASSERT_TRUE(Settled(*backend_a, *backend_b, destinations.size()));
  const std::vector<std::string> owned_a = backend_a->Owned();
  const std::vector<std::string> owned_b = backend_b->Owned();
  for (const std::string& d : owned_a) EXPECT_EQ(PreferredOwner({"a", "b"}, d), "a") << d;
  for (const std::string& d : owned_b) EXPECT_EQ(PreferredOwner({"a", "b"}, d), "b") << d;
  EXPECT_FALSE(owned_a.empty());
  EXPECT_FALSE(owned_b.empty());
}

TEST_F(TwoNodesTest, AStoppedNodeHandsItsQueuesOverAndThreadsKeepTheirOrder) {
  auto a = Open("a");
  ASSERT_TRUE(a);
  // Alone, a owns every queue: one thread of three messages and two other entries.
  ASSERT_TRUE(Submit(*a, {Msg("t1", "d", "thread"), Msg("x1", "d")}).status.ok());
  ASSERT_TRUE(Submit(*a, {Msg("t2", "d", "thread"), Msg("t3", "d", "thread"), Msg("x2", "e")}).status.ok());
  std::optional<Lease> first = a->LeaseNext("d", absl::Now());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->entry.message_key, MessageKey("src", "t1"));
  ASSERT_TRUE(a->Ack(*first).ok());

  auto b = Open("b");
  ASSERT_TRUE(b);
  a.reset();  // a clean stop: its leases are given back
  const auto delivered = Deliver({b.get()}, {"d", "e"}, 4);
  using Key = std::pair<int, std::string>;
  ASSERT_TRUE(delivered.contains(Key{0, "d"}));
  const std::vector<std::string>& d = delivered.at(Key{0, "d"});
  ASSERT_EQ(d.size(), 3u);
  // t2 before t3 whatever else is leased between them.
  EXPECT_LT(std::find(d.begin(), d.end(), "t2"), std::find(d.begin(), d.end(), "t3"));
  EXPECT_EQ(delivered.at(Key{0, "e"}), (std::vector<std::string>{"x2"}));
}

TEST_F(TwoNodesTest, ANodeWhoseLeaseIsTakenStopsLeasingThatQueue) {
  auto a = Open("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(Submit(*a, {Msg("m1", "d"), Msg("m2", "d")}).status.ok());
  // Another holder in the lease's place (what a node sees once its lease ran out and another
  // took it).
  auto client = jetstream::Client::Connect({.servers = testing::SharedCluster()->urls()});
  ASSERT_TRUE(client.ok()) << client.status();
  const std::string leases = prefix_ + "_leases";
  // Replaced in one update: between a delete and a create, the holder may retake a free lease.
  const auto held = (*client)->KvGet(leases, "d");
  ASSERT_TRUE(held.ok() && held->has_value());
  ASSERT_TRUE((*client)->KvUpdate(leases, "d", "intruder", (*held)->revision).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (a->QueuedEntries() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(a->QueuedEntries(), 0) << "the queue left the index at the next renewal";
  EXPECT_FALSE(a->LeaseNext("d", absl::Now()).has_value());
  ASSERT_TRUE((*client)->KvDelete(leases, "d").ok());
}

// The queue stats and the place of an entry answer for the whole cluster from either node:
// each node's index holds only its own queues, and it asks the other for the rest.
TEST_F(TwoNodesTest, StatsAndPlacesInLineAnswerForTheWholeClusterFromAnyNode) {
  auto [a, b, backend_a, backend_b] = OpenTwo();
  ASSERT_TRUE(a && b);
  const std::vector<std::string> destinations = {"d0", "d1", "d2", "d3", "d4", "d5"};
  // Both own some queues (settled as the rank prefers) before anything is stored.
  for (const std::string& d : destinations) ASSERT_TRUE(Submit(*a, {Msg("first-" + d, d)}).status.ok());
  ASSERT_TRUE(Settled(*backend_a, *backend_b, destinations.size()));
  ASSERT_FALSE(backend_a->Owned().empty());
  ASSERT_FALSE(backend_b->Owned().empty());
  for (int i = 0; i < 18; ++i) {
    ASSERT_TRUE(Submit(i % 2 == 0 ? *a : *b, {Msg(absl::StrCat("m", i), destinations[i % destinations.size()])}).status.ok());
  }
  // Each owner indexes what the other stored as its feed brings it: a moment later.
  const auto total_at = [](Store& node) {
    int64_t total = 0;
    for (const QueueDepth& d : node.QueueStats(absl::Now())) total += d.entries;
    return total;
  };
  const auto fed = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((total_at(*a) < 24 || total_at(*b) < 24) && std::chrono::steady_clock::now() < fed) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (Store* node : {a.get(), b.get()}) {
    std::vector<std::string> unanswered = {"stale"};
    int64_t total = 0;
    std::map<std::string, int64_t> per_destination;
    for (const QueueDepth& d : node->QueueStats(absl::Now(), &unanswered)) {
      total += d.entries;
      per_destination[d.destination] += d.entries;
    }
    EXPECT_TRUE(unanswered.empty());
    EXPECT_EQ(total, 24) << "6 first messages and 18 more, whichever node owns them";
    for (const std::string& d : destinations) EXPECT_EQ(per_destination[d], 4) << d;
    EXPECT_LT(node->QueuedEntries(), 24) << "its own index holds only its queues";
  }
  // m5 is the second entry of d5, wherever it is asked.
  const std::string owner_of_d5 = PreferredOwner({"a", "b"}, "d5");
  for (Store* node : {a.get(), b.get()}) {
    const std::vector<MessageDelivery> deliveries = node->Deliveries(MessageKey("src", "m5"));
    ASSERT_EQ(deliveries.size(), 1u);
    EXPECT_EQ(deliveries[0].state, "queued") << "asked at " << (node == a.get() ? "a" : "b") << ", owner " << owner_of_d5;
    EXPECT_EQ(deliveries[0].position, 2);
  }
}

// A stream's leader can answer "no message" for an entry it holds (seen for seconds in the
// chaos run). An entry the queue does not show stays queued until a record proves it settled:
// delivered (here by a lease that outlived its ownership) or dead-lettered.
TEST_F(TwoNodesTest, AnEntryLeavesTheIndexOnlyWithProofThatItWasSettled) {
  auto a = Open("a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(Submit(*a, {Msg("m1", "d"), Msg("m2", "d")}).status.ok());
  auto client = jetstream::Client::Connect({.servers = testing::SharedCluster()->urls()});
  ASSERT_TRUE(client.ok()) << client.status();

  // m1 out of the stream with nothing recording it delivered: not gone, however often read.
  ASSERT_TRUE((*client)->Delete(prefix_ + "_Q_d", 1).ok());
  // A lease at `at`; an unreadable entry is put back a recovery interval, and the next try goes
  // on to the next entry.
  const auto lease_at = [&a](absl::Time at) {
    std::optional<Lease> lease;
    for (int i = 0; i < 3 && !lease; ++i) lease = a->LeaseNext("d", at);
    return lease;
  };
  for (int i = 0; i <= 3; ++i) {
    const absl::Time later = absl::Now() + i * absl::Minutes(1);  // past every recovery interval
    std::optional<Lease> lease = lease_at(later);
    ASSERT_TRUE(lease.has_value());
    EXPECT_EQ(lease->entry.message_key, MessageKey("src", "m2")) << "m1 cannot be read";
    ASSERT_TRUE(a->Return(*lease).ok());
  }
  EXPECT_EQ(a->QueuedEntries(), 2) << "m1 stays queued";

  // m2 leased, then the ownership lost and taken again (m2 replayed into the index; the replay
  // reads the stream, which no longer holds m1), then the old lease acknowledged: its delivery
  // record is the proof, and m2 leaves the index.
  std::optional<Lease> stale = lease_at(absl::Now() + absl::Minutes(4));
  ASSERT_TRUE(stale.has_value());
  const std::string leases = prefix_ + "_leases";
  ASSERT_TRUE((*client)->KvDelete(leases, "d").ok());
  ASSERT_TRUE((*client)->KvCreate(leases, "d", "intruder").ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (a->QueuedEntries() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(a->QueuedEntries(), 0);
  ASSERT_TRUE((*client)->KvDelete(leases, "d").ok());
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (a->QueuedEntries() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(a->QueuedEntries(), 1) << "taken again: m2 replayed";
  ASSERT_TRUE(a->Ack(*stale).ok());
  EXPECT_EQ(a->QueuedEntries(), 1) << "a stale lease changes the backend only";
  EXPECT_FALSE(lease_at(absl::Now() + absl::Minutes(5)).has_value());
  EXPECT_EQ(a->QueuedEntries(), 0) << "m2 left the index";
}

// The counts a node reports (dead letters here) are the cluster's: the other node's change is
// seen at its next tick.
TEST_F(TwoNodesTest, EachNodeCountsWhatAnyNodeDeadLettered) {
  auto [a, b, backend_a, backend_b] = OpenTwo();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(Submit(*a, {Msg("m1", "d")}).status.ok());
  std::optional<Lease> lease;
  Store* owner = nullptr;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!lease && std::chrono::steady_clock::now() < deadline) {
    for (Store* node : {a.get(), b.get()}) {
      if (!lease && (lease = node->LeaseNext("d", absl::Now()))) owner = node;
    }
    if (!lease) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(lease.has_value());
  ASSERT_TRUE(owner->DeadLetter(*lease, "refused").ok());
  Store* other = owner == a.get() ? b.get() : a.get();
  EXPECT_EQ(owner->DeadLetterCount(), 1);
  const auto seen = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (other->DeadLetterCount() != 1 && std::chrono::steady_clock::now() < seen) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(other->DeadLetterCount(), 1) << "the other node's count, a tick (0.5 s) later";
}

// A stall of every server, longer than the fence and shorter than the lease's TTL (and than
// the servers' 4 s election timeout, so that none is held): the owner leases nothing past its
// fence, and once its lease is renewed at the revision it wrote (so no other node held it) it
// goes on with the same index, the same ownership, and the lease it had in flight, without a
// replay.
TEST_F(TwoNodesTest, AQueueFencedByAStallResumesAsItWasOnceItsLeaseIsRenewed) {
  JetStreamBackend* backend = nullptr;
  auto a = Open("a", &backend, absl::Seconds(4));  // fence at 2 s, a tick every 0.67 s
  ASSERT_TRUE(a);
  ASSERT_TRUE(Submit(*a, {Msg("m1", "d"), Msg("m2", "d")}).status.ok());
  std::optional<Lease> first = a->LeaseNext("d", absl::Now());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->entry.message_key, MessageKey("src", "m1"));

  testing::NatsCluster& cluster = *testing::SharedCluster();
  for (int i = 0; i < cluster.nodes(); ++i) cluster.Pause(i);
  std::this_thread::sleep_for(std::chrono::milliseconds(2200));
  // Past the fence (the last renewal was asked before the stall): m2 is not leased.
  const bool leased_past_fence = a->LeaseNext("d", absl::Now()).has_value();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < cluster.nodes(); ++i) cluster.Resume(i);
  EXPECT_FALSE(leased_past_fence);

  std::optional<Lease> second;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!second && std::chrono::steady_clock::now() < deadline) {
    second = a->LeaseNext("d", absl::Now());
    if (!second) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(second.has_value()) << "leasing resumed once the servers answered";
  EXPECT_EQ(second->entry.message_key, MessageKey("src", "m2"));
  EXPECT_EQ(second->generation, first->generation) << "the same ownership: no takeover, no replay";
  const absl::Status acked_first = a->Ack(*first);
  EXPECT_TRUE(acked_first.ok()) << acked_first;
  const absl::Status acked_second = a->Ack(*second);
  EXPECT_TRUE(acked_second.ok()) << acked_second;
  EXPECT_EQ(a->QueuedEntries(), 0);
  EXPECT_EQ(backend->Owned(), std::vector<std::string>{"d"});
}

// A lease that ran out unrenewed (here deleted behind the holder's back, as the servers' TTL
// removes it while its stream elects a leader for longer) and that nobody took is taken again at
// its next renewal, the queue kept as it was: no takeover, no replay, the lease in flight still
// the ownership's. Before, the queue was dropped and replayed, which after a leader's kill waits
// for the servers' meta leader (seen: delivery resumed 10 s after ingest).
TEST_F(TwoNodesTest, ALeaseThatRanOutAndIsFreeIsTakenAgainWithTheQueueAsItWas) {
  JetStreamBackend* backend = nullptr;
  auto a = Open("a", &backend);
  ASSERT_TRUE(a);
  ASSERT_TRUE(Submit(*a, {Msg("m1", "d"), Msg("m2", "d")}).status.ok());
  std::optional<Lease> first = a->LeaseNext("d", absl::Now());
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->entry.message_key, MessageKey("src", "m1"));

  jetstream::ConnectOptions connect;
  connect.servers = testing::SharedCluster()->urls();
  auto client = jetstream::Client::Connect(connect);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->KvDelete(prefix_ + "_leases", "d").ok());
  // Retaken at the next renewal (a tick every 0.5 s): the key is this node's again.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  absl::StatusOr<std::optional<jetstream::Client::KvEntry>> lease;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    lease = (*client)->KvGet(prefix_ + "_leases", "d");
  } while ((!lease.ok() || !lease->has_value()) && std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(lease.ok() && lease->has_value()) << "taken again";
  EXPECT_EQ((*lease)->value, "a");

  std::optional<Lease> second;
  while (!second && std::chrono::steady_clock::now() < deadline) {
    second = a->LeaseNext("d", absl::Now());
    if (!second) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->entry.message_key, MessageKey("src", "m2")) << "m1 stays leased: not replayed";
  EXPECT_EQ(second->generation, first->generation) << "the same ownership";
  EXPECT_TRUE(a->Ack(*first).ok());
  EXPECT_TRUE(a->Ack(*second).ok());
  EXPECT_EQ(a->QueuedEntries(), 0);
  EXPECT_EQ(backend->Owned(), std::vector<std::string>{"d"});
}

}  // namespace
}  // namespace triage::storage
