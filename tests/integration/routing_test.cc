// Routing through the real binary: conversation affinity, dropped messages, and SIGHUP
// reload of rules (valid and refused).
#include <signal.h>

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "routing-secret";

std::string Config(const std::string& dir, uint16_t port, const std::string& refund_team) {
  return LoopbackConfig(dir, kSecret) + absl::StrReplaceAll(R"(teams:
  support: {destinations: [helpdesk]}
  billing: {destinations: [helpdesk]}
  legal: {destinations: [helpdesk]}
routing:
  default_team: support
  rules:
    - {name: spam, when: {text_regex: "free followers"}, drop: true}
    - {name: refunds, when: {categories_any: [billing]}, team: TEAM}
destinations:
)",
                             {{"TEAM", refund_team}}) +
         WebhookDestination("helpdesk", port);
}

std::string Message(const std::string& id, const std::string& text, const std::string& conversation) {
  return absl::StrCat(R"({"id":")", id, R"(","platform":"x","text":")", text,
                      R"(","created_at":"2026-11-23T10:00:00Z","author":{"id":"a"},"conversation_id":")",
                      conversation, R"("})");
}

// The owner team of the delivery of message `id`, from what the helpdesk received.
std::string TeamOf(FakeHelpdesk& helpdesk, const std::string& id) {
  std::string team;
  helpdesk.WaitUntil([&](const auto& all) {
    for (const auto& r : all) {
      if (r.body.find(absl::StrCat("\"id\":\"", id, "\"")) == std::string::npos) continue;
      const size_t at = r.body.find("\"team\":\"");
      team = r.body.substr(at + 8, r.body.find('"', at + 8) - at - 8);
      return true;
    }
    return false;
  });
  return team;
}

TEST(RoutingTest, FollowUpsStayWithTheirTeamAndSpamIsDropped) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), "billing"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("m1", "I need a refund", "thread-1"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "m1"), "billing");
  // No billing words, but the same conversation: billing keeps it.
  ASSERT_EQ(daemon.PostSigned(Message("m2", "hello? anyone there", "thread-1"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "m2"), "billing");
  ASSERT_EQ(daemon.PostSigned(Message("m3", "hello? anyone there", "thread-2"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "m3"), "support");

  const HttpResult spam = daemon.PostSigned(Message("m4", "Get FREE followers now", "t-3"), kSecret);
  EXPECT_EQ(spam.body, R"({"accepted":1,"duplicates":0})");
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_messages_total{outcome="dropped",source="generic"})"), 1);
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "info event=message_dropped source=generic rule=spam suppressed=0"))
      << daemon.Log();
  // A dropped message is still remembered: its redelivery is a duplicate.
  EXPECT_EQ(daemon.PostSigned(Message("m4", "Get FREE followers now", "t-3"), kSecret).body,
            R"({"accepted":0,"duplicates":1})");
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  for (const auto& r : helpdesk.received()) {
    EXPECT_EQ(r.body.find("\"id\":\"m4\""), std::string::npos) << "a dropped message is not delivered";
  }
}

TEST(RoutingTest, SighupSwapsRulesAndRefusesABadConfig) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), "billing"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("r1", "refund please", "c1"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "r1"), "billing");

  WriteConfig(dir.path(), Config(dir.path(), helpdesk.port(), "legal"));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="applied"})", 1), 1);
  ASSERT_EQ(daemon.PostSigned(Message("r2", "refund please", "c2"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "r2"), "legal");

  // A broken config is refused with its errors; the running rules stay.
  WriteConfig(dir.path(), Config(dir.path(), helpdesk.port(), "nosuchteam"));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="refused"})", 1), 1);
  EXPECT_NE(daemon.Log().find("unknown team 'nosuchteam'"), std::string::npos) << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(Message("r3", "refund please", "c3"), kSecret).status, 200);
  EXPECT_EQ(TeamOf(helpdesk, "r3"), "legal");
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace triage::testing

namespace triage::testing {
namespace {

TEST(TriagectlTest, RouteExplainsEachLineOffline) {
  TempDir dir;
  WriteConfig(dir.path(), Config(dir.path(), 9, "billing"));
  std::ofstream(dir.path() + "/in.jsonl")
      << R"({"text":"I was charged twice, refund me!!","author":{"followers":48210,"verified":true},"platform":"x"})"
      << "\n\n"
      << R"({"text":"love the new store"})" << "\n"
      << R"({"author":{}})" << "\n";
  const std::string command = absl::StrCat(TRIAGECTL_BINARY, " route --config ", dir.path(),
                                           "/config.yaml --explain ", dir.path(), "/in.jsonl >",
                                           dir.path(), "/out.jsonl 2>", dir.path(), "/err.txt");
  EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), 1) << "the third line has no text";
  std::ifstream out(dir.path() + "/out.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(out, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  for (const char* field : {"\"id\":\"line-1\"", "\"complaint\":true", "\"level\":\"high\"",
                            "\"categories\":[{\"name\":\"billing\"", "\"team\":\"billing\"",
                            "\"rule\":\"refunds\"", "\"sla_deadline\":\"", "\"reasons\":[",
                            "followers 48210 (band 10k-100k)"}) {
    EXPECT_NE(lines[0].find(field), std::string::npos) << field << " in " << lines[0];
  }
  EXPECT_NE(lines[1].find("\"id\":\"line-3\""), std::string::npos) << "line numbers skip blanks";
  EXPECT_NE(lines[1].find("\"complaint\":false"), std::string::npos);
  std::ifstream err(dir.path() + "/err.txt");
  std::string error;
  std::getline(err, error);
  EXPECT_EQ(error, "line 4: text: is required");
}

}  // namespace
}  // namespace triage::testing
