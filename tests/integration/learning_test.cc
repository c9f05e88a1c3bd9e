// The learning loop through the real binaries: tickets created in a (fake) Zendesk, agents'
// changes sent back by Zendesk's signed webhook and stored as labels, exported with triagectl,
// trained into models, loaded by a SIGHUP reload, and a new message decided by them.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "learning-ingest-secret";
constexpr char kZendeskHookSecret[] = "zendesk-webhook-signing-secret";
const std::string kZendeskAuth = "Basic " + absl::Base64Escape("bot@acme.example/token:zd-token");

// Teams support (group 11) and billing (group 12), both in one Zendesk; feedback from it.
// `models` adds to the scoring and routing sections.
std::string Config(const std::string& dir, uint16_t zendesk, const std::string& scoring_model = "",
                   const std::string& routing_model = "") {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
scoring:
  categories:
    serious: {weight: 60, terms: [lawsuit]}
SCORING_MODEL
teams:
  support: {destinations: [zendesk]}
  billing: {destinations: [zendesk]}
routing:
  default_team: support
ROUTING_MODEL
destinations:
  zendesk:
    type: zendesk
    url: http://127.0.0.1:PORT
    email: bot@acme.example
    api_token: zd-token
    group_ids: {support: 11, billing: 12}
    backoff_initial: 20ms
    backoff_max: 100ms
feedback:
  zendesk-agents:
    type: zendesk
    destination: zendesk
    secret: HOOK_SECRET
)",
                             {{"DIR", dir},
                              {"SECRET", kSecret},
                              {"PORT", std::to_string(zendesk)},
                              {"HOOK_SECRET", kZendeskHookSecret},
                              {"SCORING_MODEL", scoring_model},
                              {"ROUTING_MODEL", routing_model}});
}

// A Zendesk webhook as Zendesk signs it: base64 HMAC-SHA256 of the timestamp then the body.
HttpResult ZendeskHook(uint16_t port, const std::string& body, const std::string& secret = kZendeskHookSecret,
                       absl::Time signed_at = absl::Now()) {
  const std::string timestamp = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", signed_at, absl::UTCTimeZone());
  const std::string signature = absl::Base64Escape(daemon::HmacSha256(secret, timestamp + body));
  return HttpCall(port, "POST", "/feedback/zendesk-agents", body,
                  {{"Content-Type", "application/json"},
                   {"X-Zendesk-Webhook-Signature", signature},
                   {"X-Zendesk-Webhook-Signature-Timestamp", timestamp}});
}

// Billing-ish and support-ish customer texts, all routed to support by the rules (no billing
// rule): only the agents' decisions teach that the first kind belongs to billing.
std::string Text(int i) {
  static const char* kBilling[] = {"charged twice for my plan", "where is my refund", "invoice shows the wrong amount",
                                   "you billed my card again", "cancel the charge please", "the payment went through twice"};
  static const char* kSupport[] = {"the app crashes on start", "cannot log in since monday", "the screen stays black",
                                   "password reset mail never comes", "sync stopped working", "the camera button does nothing"};
  return i % 2 == 0 ? kBilling[(i / 2) % 6] : kSupport[(i / 2) % 6];
}

TEST(LearningTest, AgentDecisionsBecomeLabelsThenModelsThatDecideTheNextMessage) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  Daemon daemon(dir.path(), Config(dir.path(), zendesk.port()));
  daemon.Start();
  constexpr int kMessages = 24;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_EQ(daemon.PostSigned(MessageJson(absl::StrCat("m", i), Text(i), absl::StrCat("author-", i)), kSecret).status,
              200);
  }
  ASSERT_TRUE(WaitFor([&] { return zendesk.tickets().size() == kMessages; })) << daemon.Log();

  // An agent moves every billing ticket to the billing group, marks complaints by tag and
  // sets a priority: Zendesk's trigger tells triaged.
  for (const FakeTicketing::Ticket& ticket : zendesk.tickets()) {
    const bool billing = absl::StrContains(ticket.create_body, "charge") || absl::StrContains(ticket.create_body, "refund") ||
                         absl::StrContains(ticket.create_body, "invoice") || absl::StrContains(ticket.create_body, "billed") ||
                         absl::StrContains(ticket.create_body, "payment");
    const std::string body = absl::StrCat(R"({"ticket_id":")", ticket.id, R"(","priority":")",
                                          billing ? "High" : "Normal", R"(","group_id":")", billing ? 12 : 11,
                                          R"(","tags":")", billing ? "complaint billing_issue" : "not_complaint how_to",
                                          R"("})");
    const HttpResult r = ZendeskHook(daemon.ingest_port(), body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"labelled":1})");
  }
  EXPECT_EQ(daemon.Metric(R"(triage_feedback_labels_total{feedback="zendesk-agents",outcome="stored"})"), kMessages);
  EXPECT_EQ(daemon.Metric("triage_storage_labels"), kMessages);

  // Refused or ignored, with nothing stored: a wrong signature, a stale timestamp (a replay),
  // a ticket triaged did not create, and a body without a ticket id.
  EXPECT_EQ(ZendeskHook(daemon.ingest_port(), R"({"ticket_id":"1001"})", "wrong-secret").status, 401);
  EXPECT_EQ(ZendeskHook(daemon.ingest_port(), R"({"ticket_id":"1001","priority":"low"})", kZendeskHookSecret,
                        absl::Now() - absl::Hours(1))
                .status,
            401);
  HttpResult r = ZendeskHook(daemon.ingest_port(), R"({"ticket_id":"99999","priority":"low"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StrContains(r.body, R"("labelled":0)")) << r.body;
  EXPECT_EQ(daemon.Metric(R"(triage_feedback_labels_total{feedback="zendesk-agents",outcome="unknown_ticket"})"), 1);
  EXPECT_EQ(ZendeskHook(daemon.ingest_port(), R"({"priority":"low"})").status, 400);
  EXPECT_EQ(HttpCall(daemon.ingest_port(), "POST", "/feedback/nope", "{}").status, 404);

  // triagectl show names the label next to what triaged decided.
  const std::string admin = absl::StrCat("--admin 127.0.0.1:", daemon.admin_port());
  CommandRun shown = Triagectl(absl::StrCat(admin, " show generic/m0"));
  EXPECT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "label from zendesk-agents")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "team billing, level high")) << shown.out;

  // Export, train, reload.
  const std::string labels = dir.path() + "/labels.jsonl";
  CommandRun exported = Triagectl(absl::StrCat(admin, " labels export --label team -o ", labels));
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  EXPECT_TRUE(absl::StrContains(exported.out, "exported 24 of 24")) << exported.out;
  const std::string lines = ReadFile(labels);
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), kMessages);
  EXPECT_TRUE(absl::StrContains(lines, R"("team":"billing")")) << lines.substr(0, 400);
  EXPECT_TRUE(absl::StrContains(lines, R"("triaged":{"complaint")")) << lines.substr(0, 400);
  for (const char* label : {"team", "complaint"}) {
    CommandRun trained = Triagectl(absl::StrCat("train --label ", label, " ", labels, " -o ", dir.path(), "/",
                                       label, ".model"));
    ASSERT_EQ(trained.exit_code, 0) << trained.out;
  }
  WriteConfig(dir.path(), Config(dir.path(), zendesk.port(), absl::StrCat("  model: ", dir.path(), "/complaint.model"),
                absl::StrCat("  model: ", dir.path(), "/team.model\n  rules:\n    - name: learned\n"
                                                      "      when: {min_model_confidence: 0.5}\n      model_team: true")));
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="applied"})", 1), 1) << daemon.Log();

  // A new billing message: the team model moves it to billing, the complaint model calls it
  // a complaint, and both say why, word by word.
  ASSERT_EQ(daemon.PostSigned(MessageJson("new", "I was charged twice, where is my refund", "author-new"), kSecret).status,
            200);
  const HttpResult message = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/new");
  ASSERT_EQ(message.status, 200);
  simdjson::dom::parser parser;
  simdjson::dom::element triage = parser.parse(message.body)["ticket"]["triage"];
  EXPECT_EQ(std::string_view(triage["team"]), "billing") << message.body;
  EXPECT_EQ(std::string_view(triage["rule"]), "learned") << message.body;
  EXPECT_TRUE(bool(triage["complaint"])) << message.body;
  EXPECT_GT(double(triage["complaint_probability"]), 0.5) << message.body;
  EXPECT_TRUE(absl::StrContains(message.body, "model team.model proposes team billing")) << message.body;
  EXPECT_TRUE(absl::StrContains(message.body, "model complaint.model log-odds")) << message.body;
  EXPECT_TRUE(absl::StrContains(message.body, "'charged'")) << message.body;

  // A model file that is not one is refused by name; the running models stay.
  std::ofstream(dir.path() + "/team.model") << "not a model";
  ASSERT_EQ(::kill(daemon.pid(), SIGHUP), 0);
  ASSERT_EQ(daemon.WaitForMetric(R"(triage_config_reloads_total{outcome="refused"})", 1), 1) << daemon.Log();
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "team.model: not a triaged model")) << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(MessageJson("after", "the payment went through twice", "author-x"), kSecret).status, 200);
  const HttpResult after = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/after");
  EXPECT_TRUE(absl::StrContains(after.body, R"("rule":"learned")")) << after.body;
}

}  // namespace
}  // namespace triage::testing

namespace triage::testing {
namespace {

TEST(LearningTest, FreshdeskAutomationsLabelWithTheirTokenAndPriorities) {
  TempDir dir;
  ::setenv("TRIAGE_TEST_FRESHDESK_KEY", "fd-key", 1);
  FakeTicketing freshdesk(FakeTicketing::Flavor::kFreshdesk, "Basic " + absl::Base64Escape("fd-key:X"));
  const std::string config = absl::StrCat(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: )", dir.path(), R"(/db}
sources:
  generic: {type: generic, secret: )", kSecret, R"(}
teams:
  support: {destinations: [freshdesk]}
  billing: {destinations: [freshdesk]}
routing:
  default_team: support
destinations:
  freshdesk:
    type: freshdesk
    url: http://127.0.0.1:)", freshdesk.port(), R"(
    api_key: {env: TRIAGE_TEST_FRESHDESK_KEY}
    group_ids: {support: 7, billing: 8}
feedback:
  freshdesk-agents: {type: freshdesk, destination: freshdesk, secret: fd-token, token_header: X-Triage-Token}
)");
  Daemon daemon(dir.path(), config);
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("fd1", "charged twice this month", "author-1"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return freshdesk.tickets().size() == 1; })) << daemon.Log();
  const int64_t ticket = freshdesk.tickets()[0].id;
  // What a Freshdesk automation sends: a number id, a numeric priority, the group's name.
  const std::string body = absl::StrCat(R"({"ticket_id":)", ticket, R"(,"priority":4,"group":"Billing","tags":"complaint"})");
  EXPECT_EQ(HttpCall(daemon.ingest_port(), "POST", "/feedback/freshdesk-agents", body, {{"X-Triage-Token", "nope"}}).status,
            401);
  EXPECT_EQ(HttpCall(daemon.ingest_port(), "POST", "/feedback/freshdesk-agents", body).status, 401);
  const HttpResult r =
      HttpCall(daemon.ingest_port(), "POST", "/feedback/freshdesk-agents", body, {{"X-Triage-Token", "fd-token"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"labelled":1})");
  const HttpResult shown = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/fd1");
  EXPECT_TRUE(absl::StrContains(shown.body, R"("complaint":true,"team":"billing","level":"urgent","feedback":"freshdesk-agents")"))
      << shown.body;
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_signature_failures_total{source="freshdesk-agents"})"), 2);
}

}  // namespace
}  // namespace triage::testing
