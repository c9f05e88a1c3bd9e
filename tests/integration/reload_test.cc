// SIGHUP reload of destinations through the real binary: a changed helpdesk URL takes over the
// backlog while requests keep flowing, a new destination starts, and a removal that would
// strand queued entries (or an invalid destination) is refused while the old config runs on.
#include <signal.h>

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "reload-secret";

// `teams` and `destinations` are YAML blocks (indented by two spaces).
std::string Config(const std::string& dir, const std::string& teams, const std::string& destinations) {
  return LoopbackConfig(dir, kSecret) + absl::StrReplaceAll(R"(teams:
TEAMS
routing:
  default_team: support
  rules:
    - {name: lawyers, when: {text_regex: "lawyer"}, team: legal}
destinations:
DESTINATIONS
)",
                             {{"DIR", dir}, {"TEAMS", teams},
                              {"DESTINATIONS", destinations}});
}

std::string Webhook(const std::string& name, uint16_t port) {
  return WebhookDestination(name, port, "concurrency: 1, backoff_initial: 10ms, backoff_max: 50ms, max_attempts: 1000");
}

// How many times each message id was received (its body carries "id":"...").
std::map<std::string, int> Ids(const std::vector<FakeHelpdesk::Received>& received) {
  std::map<std::string, int> ids;
  for (const auto& r : received) {
    const size_t at = r.body.find("\"id\":\"");
    if (at == std::string::npos) continue;
    ids[r.body.substr(at + 6, r.body.find('"', at + 6) - at - 6)] += 1;
  }
  return ids;
}

TEST(ReloadTest, AChangedDestinationTakesOverItsBacklogWhileRequestsFlow) {
  TempDir dir;
  FakeHelpdesk old_helpdesk;  // down: everything queued for it waits
  old_helpdesk.Answer(503);
  FakeHelpdesk new_helpdesk;
  const std::string teams = "  support: {destinations: [helpdesk]}\n  legal: {destinations: [helpdesk]}\n";
  Daemon daemon(dir.path(), Config(dir.path(), teams, Webhook("helpdesk", old_helpdesk.port())));
  daemon.Start();
  constexpr int kBefore = 20;
  for (int i = 0; i < kBefore; ++i) {
    ASSERT_EQ(daemon.PostSigned(MessageJson(absl::StrCat("b", i), "where is my order", absl::StrCat("a", i)), kSecret).status, 200);
  }
  ASSERT_TRUE(old_helpdesk.WaitUntil([](const auto& all) { return all.size() >= 3; }));

  // Requests keep coming while the config changes under them.
  constexpr int kDuring = 150;
  std::vector<int> statuses(kDuring);
  std::thread load([&] {
    for (int i = 0; i < kDuring; ++i) {
      statuses[i] = daemon.PostSigned(MessageJson(absl::StrCat("d", i), "where is my order", absl::StrCat("c", i)), kSecret).status;
    }
  });
  // The helpdesk moved; an audit file now gets support's tickets too.
  const std::string audit = dir.path() + "/audit.jsonl";
  WriteConfig(dir.path(),
              Config(dir.path(), "  support: {destinations: [helpdesk, audit]}\n  legal: {destinations: [helpdesk]}\n",
                     Webhook("helpdesk", new_helpdesk.port()) +
                         absl::StrCat("  audit: {type: file, path: ", audit, "}\n")));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="applied"})", 1), 1) << daemon.Log();
  const size_t old_seen_at_reload = old_helpdesk.received().size();
  load.join();
  for (int i = 0; i < kDuring; ++i) EXPECT_EQ(statuses[i], 200) << "request " << i;
  ASSERT_EQ(daemon.PostSigned(MessageJson("after", "where is my order", "late"), kSecret).status, 200);

  // Every message reaches the new helpdesk exactly once: the backlog, those posted during the
  // reload, and the one after it.
  const int expected = kBefore + kDuring + 1;
  ASSERT_TRUE(new_helpdesk.WaitUntil([&](const auto& all) { return Ids(all).size() == expected; }))
      << Ids(new_helpdesk.received()).size() << "\n" << daemon.Log();
  for (const auto& [id, times] : Ids(new_helpdesk.received())) EXPECT_EQ(times, 1) << id;
  // The old dispatcher only finished the attempt it had in flight (concurrency 1).
  EXPECT_LE(old_helpdesk.received().size(), old_seen_at_reload + 1);
  // The new destination started with the new rules.
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(audit), "\"id\":\"after\""); }))
      << ReadFile(audit);
  EXPECT_FALSE(absl::StrContains(ReadFile(audit), "\"id\":\"b0\"")) << "routed before the reload";
  EXPECT_NE(daemon.Log().find("event=destination_replaced destination=helpdesk"), std::string::npos);
  EXPECT_NE(daemon.Log().find("event=destination_added destination=audit"), std::string::npos);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

TEST(ReloadTest, RemovingADestinationThatHoldsEntriesOrABadOneIsRefused) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  FakeHelpdesk escalations;
  escalations.Answer(503);
  const std::string both = Webhook("helpdesk", helpdesk.port()) + Webhook("escalations", escalations.port());
  Daemon daemon(dir.path(),
                Config(dir.path(), "  support: {destinations: [helpdesk]}\n  legal: {destinations: [escalations]}\n", both));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("l1", "my lawyer will call", "a1"), kSecret).status, 200);
  ASSERT_TRUE(escalations.WaitUntil([](const auto& all) { return !all.empty(); }));

  // legal moves to the helpdesk and escalations goes, but it still holds l1.
  const std::string without = Config(dir.path(), "  support: {destinations: [helpdesk]}\n  legal: {destinations: [helpdesk]}\n",
                                     Webhook("helpdesk", helpdesk.port()));
  WriteConfig(dir.path(), without);
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="refused"})", 1), 1);
  EXPECT_NE(daemon.Log().find("cannot be removed: escalations (1 queued)"), std::string::npos) << daemon.Log();
  // The old rules run on: a new legal message still goes to escalations.
  ASSERT_EQ(daemon.PostSigned(MessageJson("l2", "my lawyer again", "a2"), kSecret).status, 200);

  // An invalid destination is refused with its error; nothing changes either.
  WriteConfig(dir.path(), Config(dir.path(), "  support: {destinations: [helpdesk]}\n  legal: {destinations: [escalations]}\n",
                                 both + absl::StrCat("  broken: {type: webhook, url: \"ftp://example.com/x\", secret: ", kWebhookSecret, "}\n")));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="refused"})", 2), 2);
  EXPECT_NE(daemon.Log().find("destinations.broken"), std::string::npos) << daemon.Log();

  // Once escalations has drained, the removal applies.
  escalations.Answer(200);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="escalations",outcome="delivered"})", 2), 2)
      << daemon.Log();
  WriteConfig(dir.path(), without);
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="applied"})", 1), 1) << daemon.Log();
  EXPECT_NE(daemon.Log().find("event=destination_removed destination=escalations"), std::string::npos);
  ASSERT_EQ(daemon.PostSigned(MessageJson("l3", "lawyer", "a3"), kSecret).status, 200);
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return Ids(all).contains("l3"); }));
  EXPECT_FALSE(Ids(escalations.received()).contains("l3"));
  // A removed destination no longer pages anyone.
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_destination_paused{destination="escalations"})"), 0);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

// What systemd's ExecReload= runs: `triaged --reload PID` exits 0 once the daemon applied the
// config and 1 with the reasons when it refused it, so `systemctl reload` tells the truth.
TEST(ReloadTest, TheReloadCommandWaitsForTheOutcomeAndFailsOnARefusedConfig) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  const std::string good = Config(dir.path(), "  support: {destinations: [helpdesk]}\n  legal: {destinations: [helpdesk]}\n",
                                  Webhook("helpdesk", helpdesk.port()));
  Daemon daemon(dir.path(), good);
  daemon.Start();
  const std::string reload =
      absl::StrCat("RUNTIME_DIRECTORY=", dir.path(), " ", TRIAGED_BINARY, " --reload ", daemon.pid());

  CommandRun applied = RunCommand(reload);
  EXPECT_EQ(applied.exit_code, 0) << applied.out;
  EXPECT_TRUE(absl::StrContains(applied.out, "config reloaded")) << applied.out;

  WriteConfig(dir.path(), absl::StrReplaceAll(good, {{"default_team: support", "default_team: nobody"}}));
  CommandRun refused = RunCommand(reload);
  EXPECT_EQ(refused.exit_code, 1) << refused.out;
  EXPECT_TRUE(absl::StrContains(refused.out, "reload refused")) << refused.out;
  EXPECT_TRUE(absl::StrContains(refused.out, "unknown team 'nobody'")) << refused.out;
  EXPECT_EQ(daemon.Metric(R"(triage_config_reloads_total{outcome="refused"})"), 1);
  // The running config stays: messages are still routed and delivered.
  ASSERT_EQ(daemon.PostSigned(MessageJson("r1", "hello", "a1"), kSecret).status, 200);
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return Ids(all).contains("r1"); }));

  // Without a runtime directory, or with no such process, it says so and fails.
  CommandRun nowhere = RunCommand(absl::StrCat("env -u RUNTIME_DIRECTORY ", TRIAGED_BINARY, " --reload ", daemon.pid()));
  EXPECT_EQ(nowhere.exit_code, 2) << nowhere.out;
  EXPECT_TRUE(absl::StrContains(nowhere.out, "RUNTIME_DIRECTORY is not set")) << nowhere.out;
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  CommandRun gone = RunCommand(reload);
  EXPECT_EQ(gone.exit_code, 2) << gone.out;
  EXPECT_TRUE(absl::StrContains(gone.out, "cannot signal")) << gone.out;
}

}  // namespace
}  // namespace triage::testing
