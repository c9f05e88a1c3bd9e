// triaged on the JetStream backend: the real binary against a real 3-node nats-server cluster on
// loopback (tests/support/nats_cluster) and a fake helpdesk.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "storage/jetstream/nats.h"
#include "storage/jetstream/ownership.h"
#include "tests/integration/harness.h"
#include "tests/support/nats_cluster.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "cluster-secret";

// One triaged node on `cluster`; with `node`, its name among the nodes (all share one prefix).
std::string Config(const NatsCluster& cluster, uint16_t helpdesk_port, const std::string& node = "") {
  std::vector<std::string> servers;
  for (const std::string& url : cluster.urls()) servers.push_back(absl::StrCat("\"", url, "\""));
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage:
  backend: jetstream
  jetstream: {servers: [SERVERS], prefix: PREFIX, publish_timeout: 2s, lease_ttl: 5sNODE}
sources:
  generic: {type: generic, secret: SECRET}
teams:
  support: {destinations: [helpdesk]}
routing:
  default_team: support
destinations:
  helpdesk:
    type: webhook
    url: http://127.0.0.1:PORT/hook
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
    timeout: 2s
    backoff_initial: 50ms
    backoff_max: 300ms
    max_attempts: 1000
)",
                             {{"SERVERS", absl::StrJoin(servers, ", ")},
                              {"NODE", node.empty() ? "" : absl::StrCat(", node: ", node)},
                              {"PREFIX", "T" + std::to_string(::getpid())},
                              {"SECRET", kSecret},
                              {"PORT", std::to_string(helpdesk_port)}});
}

std::string Message(const std::string& id) {
  return MessageJson(id, absl::StrCat("where is my order ", id), absl::StrCat("author-", id));
}

// The message ids of the requests a helpdesk received (each once per delivery, retries
// included).
std::multiset<std::string> SentIds(const std::vector<FakeHelpdesk::Received>& received) {
  std::multiset<std::string> ids;
  simdjson::dom::parser parser;
  for (const FakeHelpdesk::Received& r : received) {
    simdjson::dom::element root;
    if (parser.parse(r.body).get(root) != simdjson::SUCCESS) continue;
    std::string_view id;
    if (root["data"]["ticket"]["id"].get(id) == simdjson::SUCCESS) ids.insert(std::string(id));
  }
  return ids;
}

// Whether every id of `acknowledged` reached the helpdesk.
bool AllSent(const std::set<std::string>& acknowledged, const std::vector<FakeHelpdesk::Received>& received) {
  const std::multiset<std::string> sent = SentIds(received);
  return std::all_of(acknowledged.begin(), acknowledged.end(), [&sent](const std::string& id) { return sent.contains(id); });
}

// A message sent more than once went out under one idempotency key: the helpdesk keeps one
// ticket.
void ExpectOneKeyPerMessage(const std::vector<FakeHelpdesk::Received>& received) {
  std::map<std::string, std::set<std::string>> keys;
  for (const FakeHelpdesk::Received& r : received) {
    const std::multiset<std::string> one = SentIds({r});
    if (!one.empty() && r.headers.contains("webhook-id")) keys[*one.begin()].insert(r.headers.at("webhook-id"));
  }
  for (const auto& [id, ids] : keys) EXPECT_EQ(ids.size(), 1u) << id << " went out under two keys";
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (NatsCluster::Binary().empty()) {
      if (NatsCluster::Required()) FAIL() << "nats-server is required (TRIAGE_REQUIRE_NATS) but missing";
      GTEST_SKIP() << "nats-server is not installed";
    }
    ASSERT_TRUE(cluster_.Start()) << cluster_.error();
  }

  NatsCluster cluster_{3};
  TempDir dir_;
  FakeHelpdesk helpdesk_;
};

// The path of a message on the cluster: stored (200), delivered, and a duplicate after the
// daemon restarts, because the dedup records live in the cluster, not on this host; and after
// the whole cluster restarts.
TEST_F(ClusterTest, AMessageIsDeliveredAndStaysADuplicateAcrossDaemonAndClusterRestarts) {
  Daemon daemon(dir_.path(), Config(cluster_, helpdesk_.port()));
  daemon.Start();
  const HttpResult first = daemon.PostSigned(Message("c-1"), kSecret);
  ASSERT_EQ(first.status, 200) << first.body << daemon.Log();
  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& r) { return r.size() >= 1; })) << daemon.Log();
  EXPECT_EQ(SentIds(helpdesk_.received()).count("c-1"), 1u);

  ASSERT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
  daemon.Start();
  const HttpResult again = daemon.PostSigned(Message("c-1"), kSecret);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("\"duplicates\":1"), std::string::npos) << again.body;
  const HttpResult next = daemon.PostSigned(Message("c-2"), kSecret);
  ASSERT_EQ(next.status, 200) << next.body;
  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& r) { return r.size() >= 2; })) << daemon.Log();
  EXPECT_EQ(SentIds(helpdesk_.received()).count("c-1"), 1u) << "delivered once, and not again after the restart";
  // c-2's delivery recorded (counted once stored) before the kill below: a kill between the
  // send and its record would send it again (same id), which is not what this test is about.
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 1), 1)
      << daemon.Log();

  // All three servers killed (-9) and started again: the dedup records are in a replicated
  // stream, not in the servers' RAM (where the Nats-Msg-Id window lives and is forgotten).
  for (int i = 0; i < cluster_.nodes(); ++i) cluster_.Kill(i);
  ASSERT_TRUE(cluster_.Restart({0, 1, 2})) << cluster_.error();
  HttpResult after;
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  do {
    after = daemon.PostSigned(Message("c-1"), kSecret);
    if (after.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  } while (after.status != 200 && absl::Now() < deadline);
  ASSERT_EQ(after.status, 200) << after.body << daemon.Log();
  EXPECT_NE(after.body.find("\"duplicates\":1"), std::string::npos) << after.body;
  ASSERT_EQ(daemon.PostSigned(Message("c-3"), kSecret).status, 200);
  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& r) { return SentIds(r).contains("c-3"); }, absl::Seconds(60)))
      << daemon.Log();
  const std::multiset<std::string> sent = SentIds(helpdesk_.received());
  EXPECT_EQ(sent.count("c-1"), 1u) << "delivered once, and not again after either restart";
  EXPECT_EQ(sent.count("c-2"), 1u);
}

// The leader of the queue stream killed (-9) under load: requests during the election may be
// refused (503, the platform retries), none hangs past the publish timeout, and every message
// answered 200 is delivered once the stream has a leader again.
TEST_F(ClusterTest, KillingTheQueueStreamsLeaderUnderLoadLosesNoAcknowledgedMessage) {
  Daemon daemon(dir_.path(), Config(cluster_, helpdesk_.port()));
  daemon.Start();
  std::set<std::string> acknowledged;
  int refused = 0;
  int after_kill = 0;  // acknowledged once a server was gone
  absl::Duration slowest;
  absl::Time killed = absl::InfiniteFuture();
  absl::Time resumed = absl::InfiniteFuture();  // the first acknowledgement after the kill
  // 100 messages, the kill, then on until 100 more are stored (or 60 s).
  for (int i = 0; after_kill < 100 && absl::Now() < killed + absl::Seconds(60); ++i) {
    if (i == 100) {
      // The server that leads the helpdesk's queue stream (servers are named n0, n1, n2).
      auto client = storage::jetstream::Client::Connect({.servers = cluster_.urls()});
      ASSERT_TRUE(client.ok()) << client.status();
      const absl::StatusOr<std::string> leader =
          (*client)->StreamLeader(absl::StrCat("T", ::getpid(), "_Q_helpdesk"));
      ASSERT_TRUE(leader.ok()) << leader.status();
      int server = -1;
      ASSERT_TRUE(leader->size() == 2 && (*leader)[0] == 'n' && absl::SimpleAtoi(leader->substr(1), &server) &&
                  server >= 0 && server < cluster_.nodes())
          << "leader " << *leader;
      client->reset();
      cluster_.Kill(server);
      killed = absl::Now();
    }
    const std::string id = absl::StrCat("k-", i);
    const absl::Time start = absl::Now();
    const HttpResult result = daemon.PostSigned(Message(id), kSecret);
    slowest = std::max(slowest, absl::Now() - start);
    if (result.status == 200) {
      acknowledged.insert(id);
      if (i >= 100 && ++after_kill == 1) resumed = absl::Now();
    } else {
      EXPECT_EQ(result.status, 503) << result.body;
      ++refused;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // as a platform would back off
    }
  }
  const absl::Time stored = absl::Now();
  EXPECT_LT(slowest, absl::Seconds(8)) << "no request hangs far past the publish timeouts";
  ASSERT_EQ(after_kill, 100) << "ingest resumed with two servers of three; " << daemon.Log();
  ASSERT_TRUE(helpdesk_.WaitUntil([&](const auto& received) { return AllSent(acknowledged, received); },
                                  absl::Seconds(60)))
      << acknowledged.size() << " acknowledged, " << SentIds(helpdesk_.received()).size() << " sent; " << daemon.Log();
  // Delivery resumed: the first message stored after the kill reached the helpdesk. Counted
  // from when ingest resumed, since how long the servers take to elect a leader (4 to 24 s
  // measured here) is theirs; the owner must then deliver within the issue's 10 s, though its
  // follower waits for a new consumer (which needs the servers' meta leader): it reads the
  // stream directly meanwhile. Not asserted under ASan, whose timing is not the product's.
  absl::Time delivered = absl::InfiniteFuture();
  for (const FakeHelpdesk::Received& r : helpdesk_.received()) {
    const std::multiset<std::string> one = SentIds({r});
    int n = -1;
    if (!one.empty() && absl::SimpleAtoi(absl::StripPrefix(*one.begin(), "k-"), &n) && n >= 100) {
      delivered = std::min(delivered, r.at);
    }
  }
#ifndef __SANITIZE_ADDRESS__
  EXPECT_LT(delivered - resumed, absl::Seconds(10)) << daemon.Log();
#endif
  std::printf(
      "acknowledged %zu, refused %d, slowest request %s; after the kill: ingest resumed in %s, 100 stored in %s, "
      "delivery resumed in %s (%s after ingest)\n",
      acknowledged.size(), refused, absl::FormatDuration(slowest).c_str(),
      absl::FormatDuration(resumed - killed).c_str(), absl::FormatDuration(stored - killed).c_str(),
      absl::FormatDuration(delivered - killed).c_str(), absl::FormatDuration(delivered - resumed).c_str());
}

// Two or three triaged nodes on one cluster (and one prefix): all ingest, the queue's owner
// delivers what any stored, and a message is a duplicate whichever node saw it first.
class NodesFixture : public ClusterTest {
 protected:
  virtual int Nodes() const = 0;

  void SetUp() override {
    ClusterTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (int i = 1; i <= Nodes(); ++i) names_.push_back(absl::StrCat("n", i));
    for (const std::string& name : names_) {
      const std::string dir = absl::StrCat(dir_.path(), "/", name);
      std::filesystem::create_directories(dir);
      nodes_.push_back(std::make_unique<Daemon>(
          dir, (Traced() ? "log_level: debug\n" : "") + Config(cluster_, helpdesk_.port(), name)));
      nodes_.back()->Start();
    }
  }

  // The node the rank gives the helpdesk's queue among `names` (another hands it over if it took
  // it first).
  int Owner(const std::vector<std::string>& names) const {
    const std::string owner = storage::jetstream::PreferredOwner(names, "helpdesk");
    return static_cast<int>(std::find(names_.begin(), names_.end(), owner) - names_.begin());
  }

  std::string Logs() const {
    std::string all;
    for (const auto& node : nodes_) all += node->Log();
    return all;
  }

  // Nodes that log at debug: each entry stored and each delivery's outcome, by seq and message.
  virtual bool Traced() const { return false; }

  // For a failure's report: the lines of the nodes' logs (debug, Traced) about the messages
  // `ids`, then about the queue entries those lines name. The whole logs are kept in a file.
  std::string Trace(const std::vector<std::string>& ids) const {
    const auto names = [](absl::string_view line, absl::string_view needle) {
      for (size_t at = line.find(needle); at != absl::string_view::npos; at = line.find(needle, at + 1)) {
        const size_t end = at + needle.size();
        if (end == line.size() || !absl::ascii_isdigit(line[end])) return true;
      }
      return false;
    };
    std::vector<std::string> needles = ids;
    std::string out;
    for (int pass = 0; pass < 2; ++pass) {
      std::vector<std::string> seqs;
      for (size_t n = 0; n < nodes_.size(); ++n) {
        for (absl::string_view line : absl::StrSplit(nodes_[n]->Log(), '\n')) {
          if (!std::any_of(needles.begin(), needles.end(), [&](const std::string& k) { return names(line, k); })) continue;
          if (pass == 1) absl::StrAppend(&out, names_[n], ": ", line, "\n");
          // "stored <key> for <destination> at <seq>": the entry to follow.
          constexpr absl::string_view kStored = " for helpdesk at ";
          if (const size_t stored = line.find(kStored); pass == 0 && stored != absl::string_view::npos) {
            absl::string_view rest = line.substr(stored + kStored.size());
            rest = rest.substr(0, rest.find_first_not_of("0123456789"));
            uint64_t seq = 0;
            if (absl::SimpleAtoi(rest, &seq)) seqs.push_back(absl::StrCat("seq=", seq));
          }
        }
      }
      needles.insert(needles.end(), seqs.begin(), seqs.end());
    }
    const std::string kept = absl::StrCat(::testing::TempDir(), "/chaos-", ::getpid(), ".log");
    std::ofstream(kept) << Logs();
    return absl::StrCat(out, "(every node's log: ", kept, ")\n");
  }

  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Daemon>> nodes_;
};

class NodesTest : public NodesFixture, public ::testing::WithParamInterface<int> {
 protected:
  int Nodes() const override { return GetParam(); }
};

class ChaosTest : public NodesFixture {
 protected:
  int Nodes() const override { return 3; }
  bool Traced() const override { return true; }
};

TEST_P(NodesTest, AllIngestTheOwnerDeliversEachOnceAndDuplicatesAreSeenAcrossNodes) {
  const int n = Nodes();
  std::set<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    const std::string id = absl::StrCat("two-", i);
    const HttpResult result = nodes_[i % n]->PostSigned(Message(id), kSecret);
    ASSERT_EQ(result.status, 200) << result.body << nodes_[i % n]->Log();
    ids.insert(id);
  }
  // Sent to one node, then (as a platform retries elsewhere) to another.
  ASSERT_EQ(nodes_[0]->PostSigned(Message("both"), kSecret).status, 200);
  const HttpResult again = nodes_[n - 1]->PostSigned(Message("both"), kSecret);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_NE(again.body.find("\"duplicates\":1"), std::string::npos) << again.body;
  ids.insert("both");

  ASSERT_TRUE(helpdesk_.WaitUntil([&](const auto& received) { return SentIds(received).size() >= ids.size(); }))
      << Logs();
  const std::multiset<std::string> sent = SentIds(helpdesk_.received());
  for (const std::string& id : ids) EXPECT_EQ(sent.count(id), 1u) << id;
  EXPECT_EQ(sent.size(), ids.size());
}

// Every node answers for the whole cluster: /v1/queues counts the queue wherever it is owned
// (the other nodes ask its owner), and the nodes' queue gauges sum to the cluster's backlog (a
// node that does not own a queue shows 0 for it).
TEST_P(NodesTest, EveryNodeShowsTheWholeClustersQueues) {
  const int n = Nodes();
  helpdesk_.Answer(503);  // nothing leaves the queue
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(nodes_[i % n]->PostSigned(Message(absl::StrCat("q-", i)), kSecret).status, 200);
  }
  const auto queued_at = [this](int node) { return HttpCall(nodes_[node]->admin_port(), "GET", "/v1/queues").body; };
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (queued_at(0).find("\"queued\":30,") == std::string::npos && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  double gauges = 0;
  for (int i = 0; i < n; ++i) {
    const std::string queues = queued_at(i);
    EXPECT_NE(queues.find("\"queued\":30,"), std::string::npos) << names_[i] << ": " << queues;
    EXPECT_NE(queues.find("\"nodes_unanswered\":[]"), std::string::npos) << names_[i] << ": " << queues;
    EXPECT_NE(queues.find("\"name\":\"helpdesk\",\"configured\":true,\"entries\":30,"), std::string::npos)
        << names_[i] << ": " << queues;
    for (absl::string_view line : absl::StrSplit(HttpCall(nodes_[i]->admin_port(), "GET", "/metrics").body, '\n')) {
      if (!absl::ConsumePrefix(&line, "triage_storage_queue_entries{")) continue;
      double value = 0;
      if (absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &value)) gauges += value;
    }
  }
  EXPECT_EQ(gauges, 30) << "summed over the nodes";
}

// kill -9 of the node that owns the queue, under load: the next in rank takes the queue over
// when the lease runs out (lease_ttl 5 s here), replays it, and delivers every message any node
// acknowledged. An entry in flight at the kill may be sent again, always with the same
// idempotency key (the helpdesk's ticket is not duplicated).
TEST_P(NodesTest, KillingTheOwnerHandsItsQueueToTheNextNode) {
  const int n = Nodes();
  const int owner = Owner(names_);
  std::vector<std::string> survivors = names_;
  survivors.erase(survivors.begin() + owner);
  const int next = Owner(survivors);
  const std::string owner_name = names_[owner];
  // Wait until the preferred node holds the queue (a first message creates it).
  ASSERT_EQ(nodes_[next]->PostSigned(Message("first"), kSecret).status, 200);
  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& r) { return !r.empty(); })) << Logs();
  // A slow helpdesk, so that a backlog waits at the owner when it dies.
  helpdesk_.Respond([](const FakeHelpdesk::Received&) {
    return FakeHelpdesk::Reply{.status = 200, .delay = absl::Milliseconds(20)};
  });
  std::set<std::string> acknowledged = {"first"};
  for (int i = 0; i < 200; ++i) {
    const std::string id = absl::StrCat("before-", i);
    const HttpResult result = nodes_[i % n]->PostSigned(Message(id), kSecret);
    ASSERT_EQ(result.status, 200) << result.body;
    acknowledged.insert(id);
  }
  // The node that took the queue first (the one the first message reached) hands it over once
  // it sees the other: wait for the owner to hold it.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (nodes_[owner]->Log().find("took the queue of helpdesk") == std::string::npos && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(nodes_[owner]->Log().find("took the queue of helpdesk") != std::string::npos)
      << owner_name << " should own the queue; " << Logs();
  nodes_[owner]->Stop(SIGKILL);
  const absl::Time killed = absl::Now();
  for (int i = 0; i < 50; ++i) {
    const std::string id = absl::StrCat("after-", i);
    // Spread over the nodes left (the platform's load balancer no longer reaches the dead one).
    const int to = (owner + 1 + i % (n - 1)) % n;
    const HttpResult result = nodes_[to]->PostSigned(Message(id), kSecret);
    ASSERT_EQ(result.status, 200) << result.body;
    acknowledged.insert(id);
  }
  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& received) { return SentIds(received).contains("after-0"); },
                                  absl::Seconds(30)))
      << Logs();
  const absl::Duration resumed = absl::Now() - killed;
  ASSERT_TRUE(helpdesk_.WaitUntil([&](const auto& received) { return AllSent(acknowledged, received); },
                                  absl::Seconds(60)))
      << Logs();
  EXPECT_NE(nodes_[next]->Log().find("took the queue of helpdesk"), std::string::npos) << "the next in rank";
  ExpectOneKeyPerMessage(helpdesk_.received());
  const size_t resent = SentIds(helpdesk_.received()).size() - acknowledged.size();
  EXPECT_LT(resent, 20u) << "only what was in flight at the kill goes out again";
  EXPECT_LT(resumed, absl::Seconds(10)) << "the lease (5 s) runs out, then the replay";
  std::printf("%d nodes, owner killed: delivery resumed at the next after %s; %zu acknowledged, %zu sent again\n",
              n, absl::FormatDuration(resumed).c_str(), acknowledged.size(), resent);
}

// Two minutes of faults under steady load (TRIAGE_CHAOS_SECONDS changes the length), three
// triaged nodes on the three servers. Every 8 s one fault, in turn: kill -9 of a NATS server
// (started again 5 s later), kill -9 of a triaged node (started again 3 s later), SIGTERM of a
// triaged node (started again at once). Each request is sent until answered 200, to a node that
// is up, as a platform retries. Then every acknowledged message is delivered, and one sent twice
// went out under one idempotency key.
TEST_F(ChaosTest, ThreeNodesLoseNothingAcknowledged) {
  const char* seconds = std::getenv("TRIAGE_CHAOS_SECONDS");
  const absl::Duration length = absl::Seconds(seconds != nullptr ? std::atoi(seconds) : 120);
  const absl::Time start = absl::Now();
  absl::Time next_fault = start + absl::Seconds(8);
  struct Pending {
    absl::Time at;
    int nats = -1;  // a server to start again, or
    int node = -1;  // a triaged node
  };
  std::vector<Pending> pending;
  std::vector<bool> up(nodes_.size(), true);
  std::set<std::string> acknowledged;
  std::map<std::string, std::string> acknowledged_by;  // id: node and time, for a failure's report
  int faults = 0, refused = 0, unanswered = 0;
  absl::Duration slowest;
  std::string id = "chaos-0";
  for (int i = 0, attempt = 0; absl::Now() < start + length;) {
    const absl::Time now = absl::Now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->at > now) {
        ++it;
        continue;
      }
      if (it->nats >= 0) {
        ASSERT_TRUE(cluster_.Restart(it->nats)) << cluster_.error();
      } else {
        nodes_[it->node]->Start();
        up[it->node] = true;
      }
      it = pending.erase(it);
    }
    if (now >= next_fault && pending.empty()) {
      const int kind = faults % 3;
      const int which = (faults / 3) % 3;
      if (kind == 0) {
        cluster_.Kill(which);
        pending.push_back({now + absl::Seconds(5), which, -1});
      } else {
        nodes_[which]->Stop(kind == 1 ? SIGKILL : SIGTERM);
        up[which] = false;
        pending.push_back({now + absl::Seconds(kind == 1 ? 3 : 0), -1, which});
      }
      ++faults;
      next_fault = now + absl::Seconds(8);
    }
    const int to = (i + attempt) % static_cast<int>(nodes_.size());
    if (!up[to]) {
      ++attempt;
      continue;
    }
    const absl::Time sent = absl::Now();
    const HttpResult result = nodes_[to]->PostSigned(Message(id), kSecret);
    slowest = std::max(slowest, absl::Now() - sent);
    if (result.status == 200) {
      acknowledged.insert(id);
      acknowledged_by[id] = absl::StrCat(names_[to], " at ", absl::FormatTime("%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()),
                                         " ", result.body);
      id = absl::StrCat("chaos-", ++i);
      attempt = 0;
    } else {
      (result.status == 0 ? unanswered : refused)++;
      ++attempt;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  for (const Pending& p : pending) {
    if (p.nats >= 0) {
      ASSERT_TRUE(cluster_.Restart(p.nats)) << cluster_.error();
    }
    if (p.node >= 0) nodes_[p.node]->Start();
  }
  EXPECT_LT(slowest, absl::Seconds(10)) << "no request hangs";
  ASSERT_TRUE(helpdesk_.WaitUntil([&](const auto& received) { return AllSent(acknowledged, received); },
                                  absl::Seconds(90)))
      << [&] {
           const std::multiset<std::string> sent = SentIds(helpdesk_.received());
           std::vector<std::string> missing;
           for (const std::string& id : acknowledged) {
             if (!sent.contains(id)) missing.push_back(id);
           }
           if (missing.size() > 10) missing.resize(10);
           std::string report;
           for (const std::string& id : missing) {
             const HttpResult shown = HttpCall(nodes_[0]->admin_port(), "GET", "/v1/messages/generic/" + id);
             absl::StrAppend(&report, id, " acknowledged by ", acknowledged_by[id], ", now ", shown.body, "\n");
           }
           return absl::StrCat(acknowledged.size(), " acknowledged, ", sent.size(), " sent, missing:\n", report,
                               Trace(missing));
         }();
  ExpectOneKeyPerMessage(helpdesk_.received());
  std::printf("chaos %s: %d faults, %zu acknowledged, %d refused (503), %d unanswered, slowest %s, %zu sent again\n",
              absl::FormatDuration(length).c_str(), faults, acknowledged.size(), refused, unanswered,
              absl::FormatDuration(slowest).c_str(), SentIds(helpdesk_.received()).size() - acknowledged.size());
}

INSTANTIATE_TEST_SUITE_P(TwoAndThree, NodesTest, ::testing::Values(2, 3),
                         [](const ::testing::TestParamInfo<int>& info) { return absl::StrCat(info.param, "Nodes"); });

}  // namespace
}  // namespace triage::testing
