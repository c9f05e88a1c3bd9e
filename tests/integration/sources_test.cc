// The X and Meta sources through the real binary: handshakes, signatures over the exact
// fixture bytes (values from the shared reference), redelivery and cross-account duplicates.
#include <signal.h>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kConsumerSecret[] = "x-test-consumer-secret";
constexpr char kAppSecret[] = "meta-test-app-secret";

std::string Config(const std::string& dir, uint16_t helpdesk_port) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
storage: {path: DIR/db}
sources:
  x:
    type: x
    consumer_secret: CONSUMER
  meta:
    type: meta
    app_secret: APP
    verify_token: "tok en&=/"
    default_reach: 5
    known_authors:
      - {id: "6000000000000006", followers: 250000, verified: true, note: press}
)",
                             {{"DIR", dir}, {"CONSUMER", kConsumerSecret}, {"APP", kAppSecret}}) +
         SupportToWebhook(helpdesk_port);
}

HttpResult PostX(Daemon& daemon, const std::string& body, const std::string& signature) {
  return HttpCall(daemon.ingest_port(), "POST", "/webhooks/x", body,
                  {{"X-Twitter-Webhooks-Signature", signature}});
}

HttpResult PostMeta(Daemon& daemon, const std::string& body, const std::string& signature) {
  return HttpCall(daemon.ingest_port(), "POST", "/webhooks/meta", body,
                  {{"X-Hub-Signature-256", signature}});
}

class SourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(dir_.path(), Config(dir_.path(), helpdesk_.port()));
    daemon_->Start();
  }
  TempDir dir_;
  FakeHelpdesk helpdesk_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(SourcesTest, XCrcIsAnsweredByteForByte) {
  HttpResult r = HttpCall(daemon_->ingest_port(), "GET", "/webhooks/x?crc_token=challenge_string");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"response_token":"sha256=0GIgPlq9JK2TfmSvw5SkBen6/tBjvxWsMWX3BL1UmKY="})");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  r = HttpCall(daemon_->ingest_port(), "GET", "/webhooks/x");
  EXPECT_EQ(r.status, 400);
}

TEST_F(SourcesTest, MetaVerificationEchoesTheChallengeOnlyForTheRightToken) {
  const std::string path = "/webhooks/meta?hub.mode=subscribe&hub.challenge=1158201444";
  HttpResult r = HttpCall(daemon_->ingest_port(), "GET", path + "&hub.verify_token=tok+en%26%3D%2F");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "1158201444");
  r = HttpCall(daemon_->ingest_port(), "GET", path + "&hub.verify_token=wrong");
  EXPECT_EQ(r.status, 403);
  r = HttpCall(daemon_->ingest_port(), "GET", "/webhooks/meta?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=tok+en%26%3D%2F");
  EXPECT_EQ(r.status, 403);
  r = HttpCall(daemon_->ingest_port(), "GET", "/webhooks/meta?hub.mode=subscribe&hub.challenge=1");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_signature_failures_total{source="meta"})"), 3);
}

TEST_F(SourcesTest, SignedFixturesAreAcceptedAndRedeliveriesAreNot) {
  const std::string mention = ReadFixture("inbound/x_aaa_tweet_create_mention.json");
  const std::string mention_signature = "sha256=4T0hCaDMskJtoBqlz3dYgUbr/YWcGAPi302GnOfzgLk=";
  HttpResult r = PostX(*daemon_, mention, mention_signature);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  r = PostX(*daemon_, mention, mention_signature);  // X retries
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":1})");
  // The same tweet delivered for a second subscribed account.
  const std::string other_account =
      absl::StrReplaceAll(mention, {{"\"for_user_id\": \"1000000000000000001\"",
                                     "\"for_user_id\": \"1000000000000000042\""}});
  ASSERT_NE(other_account, mention);
  r = PostX(*daemon_, other_account, daemon::XSignature(kConsumerSecret, other_account));
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":1})");

  r = PostX(*daemon_, ReadFixture("inbound/x_aaa_direct_message.json"),
            "sha256=dixsyn9f7Cd1KotLc249N//EWRhxMiy6aVEST4x/5qI=");
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  r = PostX(*daemon_, ReadFixture("inbound/x_xaa_post_mention_create.json"),
            "sha256=Gq9ob7MPr5EBhfF0R4D6zW94cgUfZ6VmSt0+pP6/tNo=");
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  r = PostMeta(*daemon_, ReadFixture("inbound/meta_messenger_text.json"),
               "sha256=b0419df7c72153cb3ff30c103d6fb9cdeac7314d036ae08e1bd31187f589b62e");
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  r = PostMeta(*daemon_, ReadFixture("inbound/meta_page_feed_comment.json"),
               "sha256=9211b6c6016e9154ba175415967c055a90fd6ab9219c0ab63847d65ded7c4698");
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  r = PostMeta(*daemon_, ReadFixture("inbound/whatsapp_cloud_text.json"),
               "sha256=0e6deecb364a2499560cf7a1920f14edc81e62a2c0fcfcd67a0f3f117056a797");
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  const std::string batch = ReadFixture("inbound/meta_batch_mixed.json");
  r = PostMeta(*daemon_, batch, "sha256=" + absl::BytesToHexString(daemon::HmacSha256(kAppSecret, batch)));
  EXPECT_EQ(r.body, R"({"accepted":2,"duplicates":0})");
  // WhatsApp retries to every subscribed app: the second copy is a duplicate.
  r = PostMeta(*daemon_, ReadFixture("inbound/whatsapp_cloud_text.json"),
               "sha256=0e6deecb364a2499560cf7a1920f14edc81e62a2c0fcfcd67a0f3f117056a797");
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":1})");

  ASSERT_TRUE(helpdesk_.WaitUntil([](const auto& all) { return all.size() >= 7; }));
  // Events count what arrived, the redelivered WhatsApp message too; dedup comes after.
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_events_total{kind="direct_message",source="meta"})"), 4);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_events_ignored_total{reason="own_account",source="meta"})"), 2);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_messages_total{outcome="duplicate",source="x"})"), 2);
  // The known press author of the feed comment carries reach; the others get the default.
  bool saw_press = false;
  for (const auto& received : helpdesk_.received()) {
    if (received.body.find("Still no refund after 3 weeks") == std::string::npos) continue;
    saw_press = true;
    EXPECT_NE(received.body.find("\"followers\":250000"), std::string::npos);
    EXPECT_NE(received.body.find("known author: press"), std::string::npos);
    EXPECT_NE(received.body.find("\"kind\":\"comment\""), std::string::npos);
  }
  EXPECT_TRUE(saw_press);
}

TEST_F(SourcesTest, WrongOrMissingSignaturesAreRefusedAndCounted) {
  const std::string mention = ReadFixture("inbound/x_aaa_tweet_create_mention.json");
  // The request id a proxy or platform gave is answered back and logged; one is made up otherwise.
  HttpResult refused = HttpCall(daemon_->ingest_port(), "POST", "/webhooks/x", mention,
                                {{"X-Twitter-Webhooks-Signature", daemon::XSignature("wrong", mention)},
                                 {"X-Request-Id", "edge-7f3a"}});
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.headers["x-request-id"], "edge-7f3a");
  EXPECT_EQ(HttpCall(daemon_->ingest_port(), "POST", "/webhooks/x", mention).status, 401);
  const std::string messenger = ReadFixture("inbound/meta_messenger_text.json");
  // The legacy SHA-1 header alone is not enough.
  EXPECT_EQ(HttpCall(daemon_->ingest_port(), "POST", "/webhooks/meta", messenger,
                     {{"X-Hub-Signature", "sha1=5322195f730e77631fd4f86b583abcd86e146d2b"}})
                .status,
            401);
  // Bare hex without the sha256= prefix is not Meta's format.
  EXPECT_EQ(PostMeta(*daemon_, messenger, "b0419df7c72153cb3ff30c103d6fb9cdeac7314d036ae08e1bd31187f589b62e").status, 401);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_signature_failures_total{source="x"})"), 2);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_signature_failures_total{source="meta"})"), 2);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_messages_total{outcome="stored",source="x"})"), -1);
  // A warn line says why, once a second per source and status, without the body or the
  // signature.
  const std::string log = daemon_->Log();
  EXPECT_TRUE(absl::StrContains(
      log, R"(warning event=ingest_refused source=x status=401 client=127.0.0.1 request_id=edge-7f3a reason="missing or wrong signature" suppressed=0)"))
      << log;
  size_t lines = 0;
  for (size_t at = log.find("event=ingest_refused source=meta status=401"); at != std::string::npos;
       at = log.find("event=ingest_refused source=meta status=401", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << "the second refusal within the second is counted, not logged";
  EXPECT_FALSE(absl::StrContains(log, daemon::XSignature("wrong", mention)));
  EXPECT_FALSE(absl::StrContains(log, "b0419df7c72153cb3ff30c103d6fb9cdeac7314d036ae08e1bd31187f589b62e"));
}

TEST_F(SourcesTest, EventsThatAreNotMessagesAreAcknowledgedAndCounted) {
  const std::string body = ReadFixture("inbound/x_aaa_own_dm_and_events.json");
  const HttpResult r = PostX(*daemon_, body, daemon::XSignature(kConsumerSecret, body));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":0})");
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_events_total{kind="favorite",source="x"})"), 1);
  EXPECT_EQ(daemon_->Metric(R"(triage_ingest_events_ignored_total{reason="not_a_message",source="x"})"), 3);
  // A signed body that is not an X envelope is this version's gap: kept, not refused.
  const std::string garbage = R"({"neither":"x nor meta"})";
  const HttpResult odd = PostX(*daemon_, garbage, daemon::XSignature(kConsumerSecret, garbage));
  EXPECT_EQ(odd.status, 200);
  EXPECT_EQ(odd.body, R"({"accepted":0,"duplicates":0,"quarantined":1})");
  // Routine notifications are only counted; a message without its words, and content this
  // version cannot read (quarantined), are said at warn.
  EXPECT_FALSE(absl::StrContains(daemon_->Log(), "event=ingest_ignored")) << daemon_->Log();
  const std::string mention = R"({"object":"instagram","entry":[{"id":"1","time":1,"changes":[{"field":"mentions","value":{"media_id":"5"}}]}]})";
  EXPECT_EQ(PostMeta(*daemon_, mention, "sha256=" + absl::BytesToHexString(daemon::HmacSha256(kAppSecret, mention))).status,
            200);
  EXPECT_TRUE(absl::StrContains(daemon_->Log(), "warning event=ingest_ignored source=meta reason=no_content items=1 suppressed=0"))
      << daemon_->Log();
  const std::string unknown = R"({"object":"marketplace","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"2"}}]}]})";
  const HttpResult kept = PostMeta(*daemon_, unknown, "sha256=" + absl::BytesToHexString(daemon::HmacSha256(kAppSecret, unknown)));
  EXPECT_EQ(kept.status, 200);
  EXPECT_EQ(kept.body, R"({"accepted":0,"duplicates":0,"quarantined":1})");
  ASSERT_EQ(kept.headers.count("x-request-id"), 1u);
  const std::string made_up = kept.headers.at("x-request-id");
  EXPECT_EQ(made_up.size(), 16u) << "made up: 16 hex digits";
  EXPECT_TRUE(absl::StrContains(daemon_->Log(), "warning event=ingest_quarantined source=meta id=2 request_id=" + made_up))
      << daemon_->Log();
  EXPECT_TRUE(absl::StrContains(daemon_->Log(),
                                "detail=\"messaging under object 'marketplace'\""))
      << daemon_->Log();
}

}  // namespace
}  // namespace triage::testing
