// What the parser cannot read is never acknowledged and forgotten: through the real binary, a
// signed Meta body with a WhatsApp message type this version does not know, and one over the
// configured event limit, are stored raw before their 200, survive kill -9, are listed by
// `triagectl quarantine`, and after a config change `triagectl replay` routes what now reads,
// once.
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kAppSecret[] = "quarantine-app-secret";
constexpr char kToken[] = "quarantine-admin-token";

std::string Config(const std::string& dir, uint16_t helpdesk_port, int max_messages) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0, max_messages_per_request: MAX}
admin: {listen: 127.0.0.1:0, token: TOKEN}
storage: {path: DIR/db}
sources:
  meta: {type: meta, app_secret: APP, verify_token: v}
)",
                             {{"DIR", dir}, {"APP", kAppSecret}, {"TOKEN", kToken}, {"MAX", std::to_string(max_messages)}}) +
         SupportToWebhook(helpdesk_port, "concurrency: 1");
}

HttpResult PostMeta(Daemon& daemon, const std::string& body) {
  return HttpCall(daemon.ingest_port(), "POST", "/webhooks/meta", body,
                  {{"X-Hub-Signature-256", "sha256=" + absl::BytesToHexString(daemon::HmacSha256(kAppSecret, body))}});
}

// A WhatsApp envelope with these messages.
std::string WhatsApp(const std::string& messages) {
  return absl::StrCat(
      R"({"object":"whatsapp_business_account","entry":[{"id":"100","changes":[{"field":"messages","value":{)",
      R"("messaging_product":"whatsapp","metadata":{"phone_number_id":"110"},)",
      R"("contacts":[{"profile":{"name":"Jo"},"wa_id":"155500"}],"messages":[)", messages, "]}}]}]}");
}

std::string Text(const std::string& id, const std::string& words) {
  return absl::StrCat(R"({"from":"155500","id":")", id, R"(","timestamp":"1772531500","type":"text","text":{"body":")",
                      words, R"("}})");
}

std::map<std::string, int> Delivered(const std::vector<FakeHelpdesk::Received>& received) {
  std::map<std::string, int> ids;
  for (const auto& r : received) {
    const size_t at = r.body.find("\"id\":\"wamid.");
    if (at != std::string::npos) ids[r.body.substr(at + 6, r.body.find('"', at + 6) - at - 6)] += 1;
  }
  return ids;
}

TEST(QuarantineTest, WhatCannotBeReadIsKeptListedAndReplayedOnce) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), 2));
  daemon.Start();
  const std::string admin = absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " --token-file ", dir.path(), "/token");
  std::ofstream(dir.path() + "/token") << kToken;

  // A readable text and a type this version does not know, in one body: the text is routed,
  // the body is kept, the answer says so.
  const std::string hologram = WhatsApp(
      Text("wamid.A1", "my card was charged twice") + "," +
      R"({"from":"155500","id":"wamid.H1","timestamp":"1772531501","type":"hologram","hologram":{"caption":"see"}})");
  HttpResult r = PostMeta(daemon, hologram);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0,"quarantined":1})");
  // Three messages over a limit of two: nothing routed, all of it kept.
  const std::string three = WhatsApp(Text("wamid.B1", "where is my parcel") + "," + Text("wamid.B2", "hello?") + "," +
                                     Text("wamid.B3", "anyone there?"));
  r = PostMeta(daemon, three);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":0,"duplicates":0,"quarantined":1})");
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_quarantined_total{source="meta"})"), 2);
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_events_ignored_total{reason="could_not_read",source="meta"})"), 2);
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "detail=\"WhatsApp message type 'hologram'\""))
      << daemon.Log();

  // Durable before the 200: a kill -9 loses none of it.
  EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  daemon.Start();
  const std::string admin2 = absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " --token-file ", dir.path(), "/token");
  CommandRun run = Triagectl(admin2 + " quarantine");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "WhatsApp message type 'hologram'")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "more than 2 events in one request")) << run.out;
  run = Triagectl(admin2 + " quarantine show 2");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, three)) << "byte for byte: " << run.out;
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return !all.empty(); }));
  EXPECT_EQ(Delivered(helpdesk.received()).size(), 1u) << "only A1";

  // The limit goes up; the replay routes the three once, and the hologram stays (this version
  // still cannot read it; what it can read is a duplicate).
  WriteConfig(dir.path(), Config(dir.path(), helpdesk.port(), 10));
  ASSERT_EQ(RunCommand(absl::StrCat("RUNTIME_DIRECTORY=", dir.path(), " ", TRIAGED_BINARY, " --reload ", daemon.pid())).exit_code, 0);
  run = Triagectl(admin2 + " replay --all");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "1: still_unreadable, accepted 0, duplicates 1 (WhatsApp message type 'hologram')")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "2: released, accepted 3, duplicates 0")) << run.out;
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) {
    const std::map<std::string, int> ids = Delivered(all);
    return ids.contains("wamid.B1") && ids.contains("wamid.B2") && ids.contains("wamid.B3");
  })) << daemon.Log();
  // Once only: a second replay finds nothing more to route, and the released one is gone.
  run = Triagectl(admin2 + " replay 2");
  EXPECT_EQ(run.exit_code, 1) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "404")) << run.out;
  run = Triagectl(admin2 + " replay 1");
  EXPECT_TRUE(absl::StrContains(run.out, "1: still_unreadable, accepted 0, duplicates 1")) << run.out;
  EXPECT_EQ(daemon.Metric(R"(triage_quarantine_replays_total{outcome="released"})"), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_quarantine_replays_total{outcome="still_unreadable"})"), 2);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  // A1 may have gone twice: a kill -9 between its delivery and its ack (sent again at once
  // after a restart on RocksDB, once the dead process's lease ran out on JetStream).
  std::map<std::string, int> delivered = Delivered(helpdesk.received());
  EXPECT_GE(delivered["wamid.A1"], 1);
  EXPECT_LE(delivered["wamid.A1"], 2);
  delivered.erase("wamid.A1");
  EXPECT_EQ(delivered, (std::map<std::string, int>{{"wamid.B1", 1}, {"wamid.B2", 1}, {"wamid.B3", 1}}));
}

TEST(QuarantineTest, TheGenericSourceStillAnswers400AndAReplayNeedsTheToken) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  const std::string config = absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, token: TOKEN}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: s}
)",
                                                 {{"DIR", dir.path()}, {"TOKEN", kToken}}) +
                             SupportToWebhook(helpdesk.port());
  Daemon daemon(dir.path(), config);
  daemon.Start();
  const std::string body = R"({"id":"g1","text":"no platform"})";
  const HttpResult r = HttpCall(daemon.ingest_port(), "POST", "/webhooks/generic", body,
                                {{"X-Triage-Signature", "sha256=" + absl::BytesToHexString(daemon::HmacSha256("s", body))}});
  EXPECT_EQ(r.status, 400) << "the generic contract: the sender fixes its payload";
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_quarantined_total{source="generic"})"), -1);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "POST", "/v1/quarantine/replay", R"({"all":true})").status, 401);
  const std::map<std::string, std::string> bearer = {{"Authorization", absl::StrCat("Bearer ", kToken)}};
  EXPECT_EQ(HttpCall(daemon.admin_port(), "POST", "/v1/quarantine/replay", R"({"id":"x"})", bearer).status, 400);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "POST", "/v1/quarantine/replay", R"({"id":7})", bearer).status, 404);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/v1/quarantine/replay", "", bearer).status, 405);
  const HttpResult empty = HttpCall(daemon.admin_port(), "GET", "/v1/quarantine", "", bearer);
  EXPECT_EQ(empty.status, 200);
  EXPECT_TRUE(absl::StartsWith(empty.body, R"({"quarantine":[],)")) << empty.body;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace triage::testing
