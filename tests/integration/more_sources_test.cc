// Telegram, LINE and Threads through the real binary: each source type's authentication (a
// secret token, a base64 signature, a hex signature with either of two secrets), its handshake
// (Threads: Meta's), and its messages stored once and delivered.
#include <signal.h>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kTelegramToken[] = "tg-secret_token-0123456789";
constexpr char kLineSecret[] = "line-channel-secret";
constexpr char kThreadsSecret[] = "threads-app-secret";
constexpr char kMetaSecret[] = "meta-app-secret";

std::string Config(const std::string& dir, uint16_t helpdesk_port) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
storage: {path: DIR/db}
sources:
  telegram: {type: telegram, secret_token: TG, bot_ids: ["999"]}
  line: {type: line, channel_secret: LINE}
  threads: {type: threads, app_secret: THREADS, alternate_app_secret: META, verify_token: vt, brand_usernames: [acme_brand]}
)",
                             {{"DIR", dir}, {"TG", kTelegramToken}, {"LINE", kLineSecret},
                              {"THREADS", kThreadsSecret}, {"META", kMetaSecret}}) +
         SupportToWebhook(helpdesk_port);
}

HttpResult Post(Daemon& daemon, const std::string& source, const std::string& body,
                const std::map<std::string, std::string>& headers) {
  return HttpCall(daemon.ingest_port(), "POST", "/webhooks/" + source, body, headers);
}

std::string LineSignature(const std::string& key, const std::string& body) {
  return absl::Base64Escape(daemon::HmacSha256(key, body));
}

std::string HubSignature(const std::string& key, const std::string& body) {
  return "sha256=" + absl::BytesToHexString(daemon::HmacSha256(key, body));
}

TEST(MoreSourcesTest, TelegramLineAndThreadsAreAuthenticatedParsedAndDelivered) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
  daemon.Start();

  const std::string telegram = ReadFixture("inbound-more/telegram/nutgram_private_text.json");
  EXPECT_EQ(Post(daemon, "telegram", telegram, {{"X-Telegram-Bot-Api-Secret-Token", "wrong"}}).status, 401);
  EXPECT_EQ(Post(daemon, "telegram", telegram, {}).status, 401);
  HttpResult r = Post(daemon, "telegram", telegram, {{"X-Telegram-Bot-Api-Secret-Token", kTelegramToken}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  // Telegram retries the same update: a duplicate.
  r = Post(daemon, "telegram", telegram, {{"X-Telegram-Bot-Api-Secret-Token", kTelegramToken}});
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":1})");

  const std::string line = ReadFixture("inbound-more/line/java_callback_text_mention.json");
  EXPECT_EQ(Post(daemon, "line", line, {{"x-line-signature", LineSignature("other", line)}}).status, 401);
  r = Post(daemon, "line", line, {{"x-line-signature", LineSignature(kLineSecret, line)}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  // The console's Verify button: a signed empty batch.
  const std::string verify = R"({"destination":"Uab0","events":[]})";
  r = Post(daemon, "line", verify, {{"x-line-signature", LineSignature(kLineSecret, verify)}});
  EXPECT_EQ(r.status, 200);

  // Threads: Meta's handshake; either configured secret signs.
  r = HttpCall(daemon.ingest_port(), "GET", "/webhooks/threads?hub.mode=subscribe&hub.verify_token=vt&hub.challenge=c42");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "c42");
  const std::string replies = ReadFixture("inbound-more/threads/threads_replies_values_array.json");
  EXPECT_EQ(Post(daemon, "threads", replies, {{"X-Hub-Signature-256", HubSignature("other", replies)}}).status, 401);
  r = Post(daemon, "threads", replies, {{"X-Hub-Signature-256", HubSignature(kMetaSecret, replies)}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})") << "the brand's own reply is not routed";
  const std::string mention = ReadFixture("inbound-more/threads/threads_mentions.json");
  r = Post(daemon, "threads", mention, {{"X-Hub-Signature-256", HubSignature(kThreadsSecret, mention)}});
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");

  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return all.size() >= 4; })) << daemon.Log();
  std::string bodies;
  for (const auto& received : helpdesk.received()) bodies += received.body;
  for (const char* platform : {"\"platform\":\"telegram\"", "\"platform\":\"line\"", "\"platform\":\"threads\""}) {
    EXPECT_TRUE(absl::StrContains(bodies, platform)) << platform;
  }
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_signature_failures_total{source="telegram"})"), 2);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace triage::testing
