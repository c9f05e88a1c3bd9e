// The cnats layer against a real 3-node nats-server cluster on loopback.
#include "storage/jetstream/nats.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/support/nats_cluster.h"

namespace triage::storage::jetstream {
namespace {

class NatsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::NatsCluster::Binary().empty()) return;
    cluster_ = new testing::NatsCluster(3);
    if (!cluster_->Start()) start_error_ = cluster_->error();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (cluster_ == nullptr) {
      if (testing::NatsCluster::Required()) FAIL() << "nats-server is required (TRIAGE_REQUIRE_NATS) but missing";
      GTEST_SKIP() << "nats-server is not installed";
    }
    ASSERT_TRUE(start_error_.empty()) << start_error_;
    ConnectOptions options;
    options.servers = cluster_->urls();
    options.timeout = absl::Seconds(5);
    auto client = Client::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
  }

  static StreamSpec Spec(const std::string& name) {
    StreamSpec spec;
    spec.name = name;
    spec.subjects = {absl::StrCat(name, ".>")};
    spec.replicas = 3;
    return spec;
  }

  static testing::NatsCluster* cluster_;
  static std::string start_error_;
  std::unique_ptr<Client> client_;
};
testing::NatsCluster* NatsTest::cluster_ = nullptr;
std::string NatsTest::start_error_;

TEST_F(NatsTest, PublishesReadsBackDeletesAndReplaysInOrder) {
  StreamSpec spec = Spec("T1");
  spec.allow_direct = true;
  ASSERT_TRUE(client_->EnsureStream(spec).ok());
  absl::StatusOr<PubAck> first = client_->Publish({"T1.a", "one", "", {{"Triage-Level", "3"}}});
  ASSERT_TRUE(first.ok()) << first.status();
  std::vector<OutMessage> more;
  for (int i = 0; i < 200; ++i) more.push_back({absl::StrCat("T1.", i % 2 == 0 ? "a" : "b"), absl::StrCat(i), "", {}});
  const std::vector<absl::StatusOr<PubAck>> acks = client_->PublishAll(more);
  ASSERT_EQ(acks.size(), 200u);
  for (size_t i = 0; i < acks.size(); ++i) {
    ASSERT_TRUE(acks[i].ok()) << i << ": " << acks[i].status();
    EXPECT_EQ(acks[i]->seq, first->seq + 1 + i);  // one connection: stored in publish order
  }

  absl::StatusOr<std::optional<InMessage>> got = client_->Get("T1", first->seq);
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->data(), "one");
  EXPECT_EQ((*got)->Header("Triage-Level"), "3");
  EXPECT_EQ((*got)->seq(), first->seq);
  EXPECT_EQ((*got)->subject(), "T1.a");

  ASSERT_TRUE(client_->Delete("T1", first->seq).ok());
  const absl::Status twice = client_->Delete("T1", first->seq);
  EXPECT_EQ(twice.code(), absl::StatusCode::kNotFound) << twice;
  got = client_->Get("T1", first->seq);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());

  std::vector<uint64_t> seqs;
  auto collect = [&seqs](const InMessage& m) {
    seqs.push_back(m.seq());
    return true;
  };
  ASSERT_TRUE(client_->Read("T1", "", 0, collect).ok());
  ASSERT_EQ(seqs.size(), 200u);  // the deleted one is not replayed
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], first->seq + 1 + i);
  // One subject, from a seq on; and a filter that matches nothing answers at once.
  seqs.clear();
  ASSERT_TRUE(client_->Read("T1", "T1.b", first->seq + 100, collect).ok());
  ASSERT_EQ(seqs.size(), 51u);  // the odd messages (T1.b) at first+100, +102 .. +200
  EXPECT_EQ(seqs.front(), first->seq + 100);
  seqs.clear();
  const absl::Time before = absl::Now();
  ASSERT_TRUE(client_->Read("T1", "T1.none", 0, collect).ok());
  EXPECT_TRUE(seqs.empty());
  EXPECT_LT(absl::Now() - before, absl::Seconds(4));  // not the 5 s wait for a next message
  absl::StatusOr<std::vector<std::string>> names = client_->StreamNames("T1");
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_EQ(*names, std::vector<std::string>{"T1"});

  for (const From from : {From::kLeader, From::kAnyReplica}) {
    absl::StatusOr<std::optional<InMessage>> last_b = client_->GetLast("T1", "T1.b", from);
    ASSERT_TRUE(last_b.ok() && last_b->has_value()) << last_b.status();
    EXPECT_EQ((*last_b)->data(), "199");
    EXPECT_EQ((*last_b)->seq(), first->seq + 200);
    EXPECT_EQ((*last_b)->subject(), "T1.b");
    absl::StatusOr<std::optional<InMessage>> none = client_->GetLast("T1", "T1.c", from);
    ASSERT_TRUE(none.ok()) << none.status();
    EXPECT_FALSE(none->has_value());
  }
  EXPECT_TRUE(client_->DeleteStream("T1").ok());
}

// The two ways the backend refuses a second copy: a Nats-Msg-Id inside the window (the first's
// seq comes back, flagged), and one message per subject with DiscardNewPerSubject (refused).
TEST_F(NatsTest, DuplicatesAreFlaggedOrRefused) {
  StreamSpec spec = Spec("T2");
  spec.duplicates = absl::Minutes(10);
  spec.max_msgs_per_subject = 1;
  spec.discard_new = true;
  spec.discard_new_per_subject = true;
  spec.allow_direct = true;
  ASSERT_TRUE(client_->EnsureStream(spec).ok());
  absl::StatusOr<PubAck> first = client_->Publish({"T2.x", "1", "id-1", {}});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<PubAck> again = client_->Publish({"T2.x", "1", "id-1", {}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->seq, first->seq);
  EXPECT_EQ(client_->Publish({"T2.x", "2", "id-2", {}}).status().code(), absl::StatusCode::kAlreadyExists);
  const std::vector<absl::StatusOr<PubAck>> batch = client_->PublishAll(std::vector<OutMessage>{
      {"T2.y", "1", "", {}}, {"T2.y", "2", "", {}}});
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_TRUE(batch[0].ok()) << batch[0].status();
  EXPECT_EQ(batch[1].status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(client_->DeleteStream("T2").ok());
}

// Optimistic concurrency on a subject: a publish that names the last message it expects (none,
// or a seq) is refused when another was stored meanwhile.
TEST_F(NatsTest, APublishThatExpectsTheSubjectsLastMessageIsRefusedWhenItMoved) {
  StreamSpec spec = Spec("T3");
  spec.max_msgs_per_subject = 1;
  ASSERT_TRUE(client_->EnsureStream(spec).ok());
  absl::StatusOr<PubAck> first = client_->Publish({"T3.k", "1", "", {}, 0});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(client_->Publish({"T3.k", "2", "", {}, 0}).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<PubAck> second = client_->Publish({"T3.k", "2", "", {}, first->seq});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(client_->Publish({"T3.k", "3", "", {}, first->seq}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::optional<InMessage>> last = client_->Get("T3", second->seq);
  ASSERT_TRUE(last.ok() && last->has_value());
  EXPECT_EQ((*last)->data(), "2");
  absl::StatusOr<std::pair<uint64_t, uint64_t>> state = client_->StreamState("T3");
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->first, 1u);  // one message per subject: the second replaced the first
  EXPECT_TRUE(client_->DeleteStream("T3").ok());
}

TEST_F(NatsTest, KeyValueCreateUpdateByRevisionAndDelete) {
  ASSERT_TRUE(client_->EnsureBucket("t_kv", 3, absl::ZeroDuration()).ok());
  absl::StatusOr<uint64_t> created = client_->KvCreate("t_kv", "lease.zd", "node-a");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(client_->KvCreate("t_kv", "lease.zd", "node-b").status().code(), absl::StatusCode::kAlreadyExists);
  absl::StatusOr<uint64_t> renewed = client_->KvUpdate("t_kv", "lease.zd", "node-a", *created);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(client_->KvUpdate("t_kv", "lease.zd", "node-b", *created).status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<std::optional<Client::KvEntry>> got = client_->KvGet("t_kv", "lease.zd");
  ASSERT_TRUE(got.ok() && got->has_value()) << got.status();
  EXPECT_EQ((*got)->value, "node-a");
  EXPECT_EQ((*got)->revision, *renewed);
  ASSERT_TRUE(client_->KvPut("t_kv", "other", "1").ok());
  absl::StatusOr<std::vector<std::string>> keys = client_->KvKeys("t_kv");
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  ASSERT_TRUE(client_->KvDelete("t_kv", "lease.zd").ok());
  got = client_->KvGet("t_kv", "lease.zd");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_FALSE(got->has_value());
  // Free again once deleted.
  EXPECT_TRUE(client_->KvCreate("t_kv", "lease.zd", "node-b").ok());
}

// A publish no server takes ("no responders": here no stream yet; in a cluster also a stream
// just created, or electing its leader) is sent again until the timeout: it succeeds once the
// stream is there, and fails Unavailable when it never comes.
TEST_F(NatsTest, APublishNoServerTakesIsSentAgainUntilTheTimeout) {
  ConnectOptions options;
  options.servers = cluster_->urls();
  options.timeout = absl::Seconds(3);
  auto short_client = Client::Connect(options);
  ASSERT_TRUE(short_client.ok()) << short_client.status();
  Client& client = **short_client;

  const absl::Time before = absl::Now();
  const absl::StatusOr<PubAck> nowhere = client.Publish({"T5.none", "x", "", {}});
  EXPECT_EQ(nowhere.status().code(), absl::StatusCode::kUnavailable) << nowhere.status();
  EXPECT_GE(absl::Now() - before, absl::Seconds(2)) << "sent again until the timeout";
  const std::vector<absl::StatusOr<PubAck>> none = client.PublishAll({{"T5.none", "y", "", {}}});
  ASSERT_EQ(none.size(), 1u);
  EXPECT_EQ(none[0].status().code(), absl::StatusCode::kUnavailable) << none[0].status();

  // The stream comes while the publishes are being sent again.
  std::thread create([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_TRUE(client_->EnsureStream(Spec("T5")).ok());
  });
  std::vector<OutMessage> messages;
  for (int i = 0; i < 20; ++i) messages.push_back({absl::StrCat("T5.", i), absl::StrCat(i), "", {}});
  const std::vector<absl::StatusOr<PubAck>> acks = client.PublishAll(messages);
  create.join();
  ASSERT_EQ(acks.size(), messages.size());
  for (size_t i = 0; i < acks.size(); ++i) EXPECT_TRUE(acks[i].ok()) << i << ": " << acks[i].status();
  absl::StatusOr<std::pair<uint64_t, uint64_t>> state = client.StreamState("T5");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->first, messages.size()) << "each stored once";
  EXPECT_TRUE(client_->DeleteStream("T5").ok());
}

}  // namespace
}  // namespace triage::storage::jetstream
