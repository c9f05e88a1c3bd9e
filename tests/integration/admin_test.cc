// The /v1 admin API and triagectl against the running binary: token checks, pause and resume
// (kept across a restart), queues, dead letters and their requeue, and clear errors.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdio>
#include <fstream>
#include <future>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "storage/store.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "s3cret";
constexpr char kToken[] = "admin-token-0123456789";

std::string Config(const std::string& dir, uint16_t helpdesk_port, const std::string& admin_extra) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin:
  listen: 127.0.0.1:0
ADMIN
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
)",
                             {{"DIR", dir}, {"SECRET", kSecret}, {"ADMIN", admin_extra}}) +
         SupportToWebhook(helpdesk_port, "concurrency: 1, backoff_initial: 10ms, backoff_max: 20ms");
}

TEST(AdminTest, TokenIsCheckedAndWithoutOneNothingChanges) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), absl::StrCat("  token: ", kToken)));
  daemon.Start();
  const std::string bearer = absl::StrCat("Bearer ", kToken);

  HttpResult r = HttpCall(daemon.admin_port(), "GET", "/v1/queues");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.headers["www-authenticate"], "Bearer realm=\"triaged\"");
  EXPECT_EQ(r.body, R"({"error":"a bearer token is required"})");
  r = HttpCall(daemon.admin_port(), "GET", "/v1/queues", "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"wrong bearer token"})");
  r = HttpCall(daemon.admin_port(), "POST", "/v1/destinations/helpdesk/pause", "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(r.status, 401);
  r = HttpCall(daemon.admin_port(), "GET", "/v1/queues", "", {{"Authorization", bearer}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, R"("name":"helpdesk","configured":true,"entries":0,"sla_at_risk":0,"sla_overdue":0,"paused":false,"paused_until":null,"breaker":"closed")"))
      << r.body;
  EXPECT_EQ(HttpCall(daemon.admin_port(), "POST", "/v1/destinations/nowhere/pause", "", {{"Authorization", bearer}}).status, 404);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/v1/destinations/helpdesk/pause", "", {{"Authorization", bearer}}).status, 405);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "POST", "/v1/dead-letters/requeue", "{}", {{"Authorization", bearer}}).status, 400);
  // Typed inputs: a seq is a non-negative integer, not a string or -1 (which would wrap).
  for (const char* body : {R"({"destination":"helpdesk","seq":"1"})", R"({"destination":"helpdesk","seq":-1})",
                           R"({"destination":"helpdesk","all":"yes"})", R"({"destination":7,"all":true})"}) {
    r = HttpCall(daemon.admin_port(), "POST", "/v1/dead-letters/requeue", body, {{"Authorization", bearer}});
    EXPECT_EQ(r.status, 400) << body << ": " << r.body;
  }
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/bad%zz", "", {{"Authorization", bearer}}).status, 400);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/v1/dead-letters?limit=5000", "", {{"Authorization", bearer}}).status, 400);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);

  // No token configured, reads opened: reads answer, changes are refused.
  Daemon open(dir.path(), Config(dir.path(), helpdesk.port(), "  read_without_token: true"));
  open.Start();
  EXPECT_EQ(HttpCall(open.admin_port(), "GET", "/v1/queues").status, 200);
  r = HttpCall(open.admin_port(), "POST", "/v1/destinations/helpdesk/pause", "", {{"Authorization", bearer}});
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(absl::StrContains(r.body, "admin.token")) << r.body;
}

TEST(AdminTest, TriagectlPausesResumesListsAndRequeues) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  const std::string config = Config(dir.path(), helpdesk.port(), absl::StrCat("  token: {file: ", dir.path(), "/token}"));
  std::ofstream(dir.path() + "/token") << kToken << "\n";
  Daemon daemon(dir.path(), config);
  daemon.Start();
  const std::string admin = absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " --token-file ", dir.path(), "/token");

  CommandRun run = Triagectl(admin + " pause helpdesk");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, "helpdesk: paused\n");
  ASSERT_EQ(daemon.PostSigned(MessageJson("p1", "hello"), kSecret).status, 200);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(helpdesk.received().empty()) << "nothing leaves a paused destination";
  run = Triagectl(admin + " queues");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "queued 1, dead letters 0")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "helpdesk         support      low             1")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "paused by an operator")) << run.out;
  run = Triagectl(admin + " show generic/p1");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StartsWith(run.out, "generic/p1: queued\n  team support, informed: none; level low")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "helpdesk         support      owner     queued                     1        0")) << run.out;
  EXPECT_EQ(Triagectl(admin + " show generic/nope").exit_code, 1);

  // The pause holds across a restart.
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  Daemon again(dir.path(), config);
  again.Start();
  const std::string admin2 = absl::StrCat("--admin 127.0.0.1:", again.admin_port(), " --token-file ", dir.path(), "/token");
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(helpdesk.received().empty());
  run = Triagectl(admin2 + " --json queues");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(run.out, R"("paused":true)")) << run.out;

  // Resumed into a helpdesk that rejects it: a dead letter, then requeued once it accepts.
  helpdesk.Answer(422);
  run = Triagectl(admin2 + " resume helpdesk");
  EXPECT_EQ(run.out, "helpdesk: resumed\n");
  EXPECT_EQ(again.WaitForMetric("triage_storage_dead_letters", 1), 1) << again.Log();
  run = Triagectl(admin2 + " dead-letters --destination helpdesk");
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "generic:p1")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "HTTP 422")) << run.out;
  run = Triagectl(admin2 + " --json show generic/p1");
  EXPECT_TRUE(absl::StrContains(run.out, R"("status":"dead_letter")")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, R"("state":"dead_letter","position":null,"attempts":1)")) << run.out;
  run = Triagectl(admin2 + " --json dead-letters");
  simdjson::dom::parser parser;
  simdjson::dom::element letters = parser.parse(run.out)["dead_letters"];
  ASSERT_EQ(letters.get_array().size(), 1u) << run.out;
  const int64_t seq = letters.at(0)["seq"];

  helpdesk.Answer(200);
  run = Triagectl(absl::StrCat(admin2, " requeue helpdesk ", seq));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, "requeued 1\n");
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return !all.empty() && all.back().answered == 200; }))
      << again.Log();
  EXPECT_EQ(again.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 1), 1);
  run = Triagectl(admin2 + " show generic/p1");
  EXPECT_TRUE(absl::StartsWith(run.out, "generic/p1: delivered\n")) << run.out;
  // The delivery that made it: where, when, after how many attempts.
  EXPECT_TRUE(absl::StrContains(run.out, "helpdesk         support      owner     delivered                  -        1  at 20"))
      << run.out;
  run = Triagectl(admin2 + " requeue helpdesk " + std::to_string(seq));
  EXPECT_EQ(run.exit_code, 1) << "already requeued: " << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "404")) << run.out;

  // Clear errors: a wrong token, and a daemon that is not there.
  std::ofstream(dir.path() + "/wrong") << "nope\n";
  run = Triagectl(absl::StrCat("--admin 127.0.0.1:", again.admin_port(), " --token-file ", dir.path(), "/wrong queues"));
  EXPECT_EQ(run.exit_code, 4) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "401 wrong bearer token")) << run.out;
  EXPECT_EQ(again.Stop(SIGTERM), 0);
  run = Triagectl(admin2 + " queues");
  EXPECT_EQ(run.exit_code, 3) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "the daemon does not answer")) << run.out;
  EXPECT_EQ(Triagectl("frobnicate").exit_code, 2);
}

TEST(AdminTest, QueuesCountEntriesAtSlaRiskAndOverdueAndKeepUnconfiguredOnes) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  // Entries stored 50 and 70 minutes ago with a 1 h SLA, as a daemon before this one left
  // them, behind an operator's pause; one more for a destination no longer configured.
  {
    auto store = OpenStoreOf(dir.path(), absl::Now());
    ASSERT_TRUE(store.ok()) << store.status();
    auto submit = [&](const std::string& id, const std::string& destination, absl::Duration ago) {
      storage::NewMessage m;
      m.key = storage::MessageKey("generic", id);
      m.ticket_json = "{}";
      m.level = router::Level::kHigh;
      m.sla_deadline = absl::Now() - ago + absl::Hours(1);
      m.deliveries.push_back({destination, "support", true});
      std::promise<storage::IngestResult> done;
      (*store)->Submit({m}, absl::Now() - ago, [&](storage::IngestResult r) { done.set_value(std::move(r)); });
      ASSERT_TRUE(done.get_future().get().status.ok());
    };
    submit("risky", "helpdesk", absl::Minutes(50));
    submit("late", "helpdesk", absl::Minutes(70));
    submit("fresh", "helpdesk", absl::Minutes(1));
    submit("orphan", "gone", absl::Minutes(1));
    ASSERT_TRUE((*store)->SetManualPause("helpdesk", true).ok());
  }
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), absl::StrCat("  token: ", kToken)));
  daemon.Start();
  EXPECT_EQ(daemon.Metric(R"(triage_storage_sla_at_risk_entries{destination="helpdesk",level="high",team="support"})"), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_storage_sla_overdue_entries{destination="helpdesk",level="high",team="support"})"), 1);
  const HttpResult r = HttpCall(daemon.admin_port(), "GET", "/v1/queues", "", {{"Authorization", absl::StrCat("Bearer ", kToken)}});
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element destinations = parser.parse(r.body)["destinations"];
  ASSERT_EQ(destinations.get_array().size(), 2u) << r.body;
  EXPECT_EQ(std::string_view(destinations.at(0)["name"]), "helpdesk");
  EXPECT_EQ(int64_t(destinations.at(0)["entries"]), 3);
  EXPECT_EQ(int64_t(destinations.at(0)["sla_at_risk"]), 1) << r.body;
  EXPECT_EQ(int64_t(destinations.at(0)["sla_overdue"]), 1) << r.body;
  EXPECT_EQ(int64_t(destinations.at(0)["queues"].at(0)["oldest_age_seconds"]) / 60, 70) << r.body;
  EXPECT_EQ(std::string_view(destinations.at(1)["name"]), "gone");
  EXPECT_FALSE(bool(destinations.at(1)["configured"])) << r.body;
  EXPECT_EQ(int64_t(destinations.at(1)["entries"]), 1);
  EXPECT_NE(daemon.Log().find("event=entries_without_destination destination=gone queued=1"), std::string::npos)
      << daemon.Log();

  std::ofstream(dir.path() + "/token") << kToken << "\n";
  const CommandRun run = Triagectl(absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " --token-file ", dir.path(), "/token queues"));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "helpdesk         support      high            3         420")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "        1        1  paused by an operator")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "gone             support      high            1")) << run.out;
  EXPECT_TRUE(absl::StrContains(run.out, "not configured: its entries wait")) << run.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

TEST(AdminTest, IdsWithSpacesSlashesAndPercentSignsAreShown) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), "  read_without_token: true"));
  daemon.Start();
  // Encoded by triagectl, decoded by the API.
  ASSERT_EQ(daemon.PostSigned(MessageJson("a b/c%d", "hello"), kSecret).status, 200);
  const CommandRun run = Triagectl(absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " show 'generic/a b/c%d'"));
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_TRUE(absl::StartsWith(run.out, "generic/a b/c%d: ")) << run.out;
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/a%20b%2Fc%25d").status, 200);
}

}  // namespace
}  // namespace triage::testing
