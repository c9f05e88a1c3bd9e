// Delivery into helpdesks: the real triaged binary against fake Zendesk, Freshdesk, HubSpot,
// Jira Service Management and Slack endpoints on loopback that answer as the documented APIs
// do, faults included. (A real Request Tracker is in rt_test.cc.)
#include <signal.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "daemon/delivery.h"
#include "router/ticket_json.h"
#include "storage/store.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "test-ingest-secret";
const std::string kZendeskAuth = "Basic " + absl::Base64Escape("bot@acme.example/token:zd-token");
const std::string kFreshdeskAuth = "Basic " + absl::Base64Escape("fd-key:X");

// "fire" makes a message urgent, "lawsuit" high, "refund" normal; anything else is low.
std::string Config(const std::string& dir, const std::string& destinations,
                   const std::string& support = "[helpdesk]") {
  return absl::StrReplaceAll(R"(log_level: debug
server: {listen: 127.0.0.1:0, io_threads: 2}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
SCORING
teams:
  support: {destinations: SUPPORT}
routing:
  default_team: support
destinations:
DESTINATIONS)",
                             {{"DIR", dir}, {"SECRET", kSecret}, {"SCORING\n", kTestScoring}, {"SUPPORT", support},
                              {"DESTINATIONS", destinations}});
}

std::string Zendesk(uint16_t port, const std::string& extra = "") {
  return absl::StrCat(R"(  helpdesk:
    type: zendesk
    url: http://127.0.0.1:)", port, R"(
    email: bot@acme.example
    api_token: zd-token
    group_ids: {support: 11}
    timeout: 1s
    backoff_initial: 20ms
    backoff_max: 100ms
)", extra);
}

std::string Freshdesk(uint16_t port) {
  return absl::StrCat(R"(  helpdesk:
    type: freshdesk
    url: http://127.0.0.1:)", port, R"(
    api_key: {env: TRIAGE_TEST_FRESHDESK_KEY}
    group_ids: {support: 7}
    timeout: 1s
    backoff_initial: 20ms
    backoff_max: 100ms
)");
}

// A generic message in a conversation.
std::string Message(const std::string& id, const std::string& text, const std::string& conversation,
                    const std::string& author = "author-1") {
  return absl::StrCat(R"({"id":")", id, R"(","platform":"x","text":")", text,
                      R"(","created_at":"2026-11-23T10:00:00Z","conversation_id":")", conversation, R"(","author":{"id":")", author,
                      R"(","handle":"handle-)", author, R"(","followers":10}})");
}

bool HasTag(const std::string& json, const std::string& tag, bool zendesk = true) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(json);
  simdjson::dom::array tags = zendesk ? root["ticket"]["tags"].get_array() : root["tags"].get_array();
  for (simdjson::dom::element t : tags) {
    if (std::string_view(t) == tag) return true;
  }
  return false;
}

// The requests about tickets (creations, comments, lookups), without the users requests that
// make the customers Zendesk end users.
std::vector<FakeHelpdesk::Received> TicketRequests(const std::vector<FakeHelpdesk::Received>& all) {
  std::vector<FakeHelpdesk::Received> out;
  for (const FakeHelpdesk::Received& r : all) {
    if (!absl::StartsWith(r.target, "/api/v2/users")) out.push_back(r);
  }
  return out;
}

TEST(HelpdeskTest, ZendeskTicketsThenCommentsOnTheThreadInArrivalOrder) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port())));
  daemon.Start();
  // One request: the low first message, then an urgent follow-up by the same author (it must
  // still come second, as a comment), and another author in the same conversation (own ticket).
  const HttpResult r = daemon.PostSigned(
      absl::StrCat("[", Message("m1", "app is slow", "conv-1"), ",", Message("m2", "fire in the shop", "conv-1"),
                   ",", Message("m3", "refund me too", "conv-1", "author-2"), "]"),
      kSecret);
  ASSERT_EQ(r.status, 200) << r.body;
  // Two tickets, each after its author became a Zendesk end user, and one comment.
  ASSERT_TRUE(zendesk.http().WaitUntil([](const auto& all) { return all.size() >= 5; })) << daemon.Log();
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 3), 3);

  const std::vector<FakeTicketing::Ticket> tickets = zendesk.tickets();
  ASSERT_EQ(tickets.size(), 2u);
  std::map<std::string, const FakeTicketing::Ticket*> by_text;
  for (const auto& t : tickets) by_text[Field(t.create_body, {"ticket", "comment", "body"}).substr(0, 13)] = &t;
  ASSERT_TRUE(by_text.contains("app is slow\n\n")) << tickets[0].create_body;
  const FakeTicketing::Ticket& first = *by_text.at("app is slow\n\n");
  ASSERT_EQ(first.follow_ups.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(Field(first.follow_ups[0], {"ticket", "comment", "body"}), "fire in the shop"));
  EXPECT_EQ(Field(first.follow_ups[0], {"ticket", "comment", "public"}), "false");

  for (const FakeHelpdesk::Received& request : zendesk.http().received()) {
    EXPECT_EQ(request.headers.at("authorization"), kZendeskAuth);
    EXPECT_EQ(request.headers.at("content-type"), "application/json");
    EXPECT_TRUE(absl::StartsWith(request.headers.at("user-agent"), "triaged/"));
    if (request.method == "POST" && request.target == "/api/v2/users/create_or_update.json") {
      EXPECT_EQ(Field(request.body, {"user", "role"}), "end-user");
      EXPECT_TRUE(absl::StartsWith(Field(request.body, {"user", "external_id"}), "x:author-")) << request.body;
      EXPECT_TRUE(absl::StrContains(request.body, R"("identities":[{"type":"twitter","value":"handle-author-)"))
          << request.body;
    } else if (request.method == "POST") {
      EXPECT_EQ(request.target, "/api/v2/tickets.json");
      // The customer is the requester: the user made from the author, not the API user.
      const std::string requester = Field(request.body, {"ticket", "requester_id"});
      const auto users = zendesk.users();
      EXPECT_TRUE(std::any_of(users.begin(), users.end(), [&](const auto& u) { return std::to_string(u.id) == requester; }))
          << request.body;
      // The idempotency key is the delivery id, also kept as the ticket's external_id.
      EXPECT_EQ(request.headers.at("idempotency-key"), Field(request.body, {"ticket", "external_id"}));
      EXPECT_EQ(Field(request.body, {"ticket", "group_id"}), "11");
      EXPECT_EQ(Field(request.body, {"ticket", "status"}), "new");
      EXPECT_TRUE(HasTag(request.body, "team_support"));
      EXPECT_TRUE(HasTag(request.body, "triaged"));
    } else {
      EXPECT_EQ(request.method, "PUT");
      EXPECT_EQ(request.target, absl::StrCat("/api/v2/tickets/", first.id, ".json"));
      EXPECT_EQ(request.headers.count("idempotency-key"), 0u);
    }
  }
  // The comment went after its ticket was created, though it is the most urgent.
  const auto received = zendesk.http().received();
  const auto put = std::find_if(received.begin(), received.end(), [](const auto& x) { return x.method == "PUT"; });
  ASSERT_NE(put, received.end());
  EXPECT_TRUE(std::any_of(received.begin(), put, [](const auto& x) {
    return absl::StrContains(x.body, "app is slow");
  }));
  // The admin API names the thread's ticket.
  const HttpResult shown = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/m2");
  EXPECT_TRUE(absl::StrContains(shown.body, absl::StrCat(R"("remote_tickets":[{"destination":"helpdesk","team":"support","ticket":")", first.id, R"(","level":"urgent"}])")))
      << shown.body;
  EXPECT_TRUE(absl::StrContains(shown.body, R"("status":"delivered")")) << shown.body;
  // A later follow-up, after a restart, still finds the ticket (its id is in RocksDB).
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  Daemon again(dir.path(), Config(dir.path(), Zendesk(zendesk.port())));
  again.Start();
  ASSERT_EQ(again.PostSigned(Message("m4", "any news?", "conv-1"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([](const auto& all) { return all.size() >= 6; })) << again.Log();
  EXPECT_EQ(zendesk.tickets().size(), 2u);
  EXPECT_EQ(zendesk.users().size(), 2u) << "a follow-up needs no requester";
  EXPECT_EQ(zendesk.tickets()[first.id - 1001].follow_ups.size(), 2u);
}

TEST(HelpdeskTest, ZendeskRequesterIsOneEndUserPerCustomerAndARefusalLosesNoTicket) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  using Fault = FakeTicketing::Fault;
  // The first users request is refused (an identity another user holds, say), the second
  // fails for now.
  zendesk.ScriptUsers({Fault{.status = 422}, Fault{.status = 503}});
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port(), "    concurrency: 1\n")));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("r1", "where is my parcel", "conv-a"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 1; })) << daemon.Log();
  EXPECT_FALSE(absl::StrContains(zendesk.tickets()[0].create_body, "requester_id"))
      << "created with the default requester rather than lost";
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "event=requester_refused")) << daemon.Log();
  // Two more conversations of the same author: the 503 is retried, then both tickets have the
  // same requester.
  ASSERT_EQ(daemon.PostSigned(Message("r2", "still nothing", "conv-b"), kSecret).status, 200);
  ASSERT_EQ(daemon.PostSigned(Message("r3", "and another thing", "conv-c"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 3; })) << daemon.Log();
  const auto tickets = zendesk.tickets();
  ASSERT_EQ(zendesk.users().size(), 1u);
  const std::string user = std::to_string(zendesk.users()[0].id);
  EXPECT_EQ(Field(tickets[1].create_body, {"ticket", "requester_id"}), user);
  EXPECT_EQ(Field(tickets[2].create_body, {"ticket", "requester_id"}), user);
  EXPECT_EQ(Field(zendesk.users()[0].body, {"user", "name"}), "@handle-author-1");
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="retry"})"), 1);
}

// A low question, then the same customer threatens a lawyer: the follow-up raises the ticket
// (priority, tags) in the comment's own update; a calmer one after that lowers nothing.
TEST(HelpdeskTest, AMoreUrgentFollowUpRaisesTheTicketAndALowerOneNeverLowersIt) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port(), "    concurrency: 1\n")));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("e1", "how do I change my plan", "conv-e"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 1; })) << daemon.Log();
  EXPECT_EQ(Field(zendesk.tickets()[0].create_body, {"ticket", "priority"}), "low");
  ASSERT_EQ(daemon.PostSigned(Message("e2", "fire in the shop, I am calling my lawyer", "conv-e"), kSecret)
                .status,
            200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets()[0].follow_ups.size() >= 1; }))
      << daemon.Log();
  const std::string raised = zendesk.tickets()[0].follow_ups[0];
  ASSERT_TRUE(absl::StrContains(raised, "priority")) << raised << daemon.Log();
  const std::string level = Field(raised, {"ticket", "priority"});
  EXPECT_NE(level, "low") << raised;
  EXPECT_TRUE(absl::StrContains(raised, R"("remove_tags":["level_low"])")) << raised;
  EXPECT_TRUE(absl::StrContains(raised, absl::StrCat(R"("additional_tags":["triaged","x","team_support","level_)", level)))
      << raised;
  EXPECT_TRUE(absl::StrContains(Field(raised, {"ticket", "comment", "body"}), "Raised by this follow-up: priority low -> "))
      << raised;
  // The admin API shows the ticket at its new level, once the raise is recorded.
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 2), 2);
  const HttpResult shown = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/e2");
  EXPECT_TRUE(absl::StrContains(shown.body, absl::StrCat(R"("level":")", level, R"("}])"))) << shown.body;
  // Calmer again: a comment only, the priority stays.
  ASSERT_EQ(daemon.PostSigned(Message("e3", "thanks", "conv-e"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets()[0].follow_ups.size() >= 2; }))
      << daemon.Log();
  const std::string calm = zendesk.tickets()[0].follow_ups[1];
  EXPECT_FALSE(absl::StrContains(calm, "priority")) << calm;
  EXPECT_FALSE(absl::StrContains(calm, "Raised")) << calm;
}

// A low question owned by support, then "I'm calling my lawyer" in the same conversation: the
// legal rule takes it and it is more urgent, so the same ticket moves to legal's group.
TEST(HelpdeskTest, AnEscalationMovesTheSameTicketToTheNewOwnersGroup) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  std::string config = Config(dir.path(), Zendesk(zendesk.port(), "    concurrency: 1\n"));
  config = absl::StrReplaceAll(config, {{"group_ids: {support: 11}", "group_ids: {support: 11, legal: 12}"},
                                        {"teams:\n", "teams:\n  legal: {destinations: [helpdesk]}\n"},
                                        {"  default_team: support\n",
                                         "  default_team: support\n  rules:\n    - {name: legal-threat, when: "
                                         "{text_regex: lawyer, levels: [urgent, high]}, team: legal}\n"}});
  Daemon daemon(dir.path(), config);
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("g1", "how do I change my plan", "conv-g"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 1; })) << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(Message("g2", "fire, I am calling my lawyer", "conv-g"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets()[0].follow_ups.size() >= 1; }))
      << daemon.Log();
  EXPECT_EQ(zendesk.tickets().size(), 1u) << "one conversation, one ticket";
  const std::string moved = zendesk.tickets()[0].follow_ups[0];
  EXPECT_EQ(Field(moved, {"ticket", "group_id"}), "12") << moved;
  EXPECT_EQ(Field(moved, {"ticket", "priority"}), "urgent") << moved;
  EXPECT_TRUE(absl::StrContains(moved, R"("remove_tags":["level_low","team_support"])")) << moved;
  const std::string note = Field(moved, {"ticket", "comment", "body"});
  EXPECT_TRUE(absl::StrContains(note, "Raised by this follow-up: priority low -> urgent, team support -> legal")) << note;
  EXPECT_TRUE(absl::StrContains(note, "it moves from support to legal")) << note;
}

// A message that informs pr: one ticket (tagged inform_pr) and one Slack alert, not one per
// team; `informed: separate` gives pr a ticket of its own.
TEST(HelpdeskTest, InformedTeamsJoinTheOwnersTicketUnlessSeparate) {
  for (const bool separate : {false, true}) {
    TempDir dir;
    FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
    FakeHelpdesk slack;
    const std::string destinations =
        Zendesk(zendesk.port(), separate ? "    informed: separate\n" : "") +
        absl::StrCat("  alerts: {type: slack, url: 'http://127.0.0.1:", slack.port(), "/hook'}\n");
    std::string config = Config(dir.path(), destinations, "[helpdesk, alerts]");
    config = absl::StrReplaceAll(config, {{"teams:\n", "teams:\n  pr: {destinations: [helpdesk, alerts]}\n"},
                                          {"  default_team: support\n",
                                           "  default_team: support\n  rules:\n    - {name: loud, when: "
                                           "{text_regex: fire}, inform: [pr]}\n"}});
    Daemon daemon(dir.path(), config);
    daemon.Start();
    ASSERT_EQ(daemon.PostSigned(Message("i1", "fire in the shop", "conv-i"), kSecret).status, 200);
    const size_t want = separate ? 2 : 1;
    ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= want; }))
        << daemon.Log();
    ASSERT_TRUE(slack.WaitUntil([](const auto& all) { return !all.empty(); })) << daemon.Log();
    ASSERT_TRUE(WaitFor([&] {
      return daemon.Metric(R"(triage_delivery_attempts_total{destination="alerts",outcome="delivered"})") >= 1 &&
             daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})") >= want;
    }));
    EXPECT_EQ(zendesk.tickets().size(), want) << separate;
    EXPECT_EQ(slack.received().size(), 1u) << "one alert per message";
    const std::string owner_ticket = zendesk.tickets()[0].create_body;
    EXPECT_EQ(HasTag(owner_ticket, "inform_pr"), !separate) << owner_ticket;
    EXPECT_EQ(absl::StrContains(Field(owner_ticket, {"ticket", "comment", "body"}), "Informed: pr"), true) << owner_ticket;
  }
}

TEST(HelpdeskTest, ZendeskFaultsAreRetriedWithoutADuplicateTicket) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  using Fault = FakeTicketing::Fault;
  zendesk.Script({
      Fault{.status = 429, .retry_after = "1"},            // throttled: the whole destination waits 1 s
      Fault{.status = 503},                                // unavailable
      Fault{.reset = true},                                // connection reset before any answer
      Fault{.reset = true, .after_serving = true},         // created, answer lost
      Fault{.after_serving = true, .delay = absl::Milliseconds(1500)},  // created, answer too late
  });
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port(), "    concurrency: 1\n")));
  daemon.Start();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(daemon.PostSigned(Message(absl::StrCat("f", i), "refund please", absl::StrCat("c", i)), kSecret).status, 200);
  }
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 3; }))
      << daemon.Log();
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 3), 3);
  const auto tickets = zendesk.tickets();
  ASSERT_EQ(tickets.size(), 3u) << "each message created exactly one ticket";
  std::set<std::string> keys;
  for (const auto& t : tickets) keys.insert(t.idempotency_key);
  EXPECT_EQ(keys.size(), 3u);
  EXPECT_EQ(zendesk.idempotent_replays(), 2) << "the lost and the late answer were replayed";

  const auto received = TicketRequests(zendesk.http().received());
  ASSERT_GE(received.size(), 6u);
  EXPECT_EQ(received[0].answered, 429);
  // Retry-After: 1 held the destination back, not only that entry.
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="throttled"})"), 1);
  // 503, lost answer, late answer. The reset before any answer came on a reused keep-alive
  // connection, which the client retries once at once on a fresh one (a server may close an
  // idle connection): that resend met the next fault.
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="retry"})"), 3);
  EXPECT_EQ(daemon.Metric(R"(triage_storage_dead_letters)"), 0);
}

TEST(HelpdeskTest, RetryAfterPausesTheWholeDestination) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  zendesk.Script({FakeTicketing::Fault{.status = 429, .retry_after = "2"}});
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port(), "    concurrency: 1\n")));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("p0", "hello", "c0"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([](const auto& all) { return !all.empty(); }));
  const absl::Time throttled = absl::Now();
  // A message that arrives while the destination waits is not sent before the pause ends.
  ASSERT_EQ(daemon.PostSigned(Message("p1", "fire", "c1"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([](const auto& all) { return TicketRequests(all).size() >= 3; }))
      << daemon.Log();
  EXPECT_GE(absl::Now() - throttled, absl::Milliseconds(1900));
  const auto received = TicketRequests(zendesk.http().received());
  // Urgent first once the pause ends, the throttled low one next.
  EXPECT_TRUE(absl::StrContains(received[1].body, "fire")) << received[1].body;
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_rate_limit_waits_total{destination="helpdesk"})"), 0)
      << "two requests are within the bucket's burst";
}

// Entries retried more than two hours after they arrived may outlive their Idempotency-Key:
// they look their delivery up by external_id first, and create only when nothing is found.
TEST(HelpdeskTest, ZendeskRetriesPastTheKeyLifetimeLookUpBeforeCreating) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  const absl::Time long_ago = absl::Now() - absl::Hours(3);
  std::string lost_id;
  {
    auto store = OpenStoreOf(dir.path(), absl::Now());
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<storage::NewMessage> batch;
    for (const char* id : {"lost", "never-sent"}) {
      router::RoutedMessage r;
      r.message.source = "generic";
      r.message.id = id;
      r.message.platform = "x";
      r.message.author.id = "author-1";
      r.message.conversation_id = absl::StrCat("conv-", id);
      r.message.text = absl::StrCat("old ", id);
      r.received_at = long_ago;
      r.triage.team = "support";
      storage::NewMessage& m = batch.emplace_back();
      m.key = storage::MessageKey("generic", id);
      m.thread_key = storage::ThreadKey("generic", r.message.conversation_id, "author-1");
      m.ticket_json = router::TicketJson(r);
      m.deliveries.push_back({"helpdesk", "support", true});
    }
    std::promise<storage::IngestResult> done;
    (*store)->Submit(std::move(batch), long_ago, [&](storage::IngestResult x) { done.set_value(x); });
    ASSERT_TRUE(done.get_future().get().status.ok());
    // Both were tried once, long ago; the answer to "lost" never came back.
    const absl::Time now = absl::Now();
    for (const char* id : {"lost", "never-sent"}) {
      auto lease = (*store)->LeaseNext("helpdesk", now);
      ASSERT_TRUE(lease.has_value());
      EXPECT_EQ(lease->entry.message_key, storage::MessageKey("generic", id));
      ASSERT_TRUE((*store)->RetryLater(*lease, now + absl::Milliseconds(1), "read: timed out").ok());
    }
    lost_id = daemon::DeliveryId("helpdesk", storage::MessageKey("generic", "lost"), "support");
  }
  const int64_t earlier = zendesk.Seed(absl::StrCat(R"({"ticket":{"external_id":")", lost_id, R"("}})"));

  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port())));
  daemon.Start();
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 2), 2)
      << daemon.Log();
  const auto tickets = zendesk.tickets();
  ASSERT_EQ(tickets.size(), 2u) << "the lost creation was found, not repeated";
  EXPECT_TRUE(absl::StrContains(tickets[1].create_body, "old never-sent"));
  int lookups = 0;
  for (const auto& r : zendesk.http().received()) {
    if (r.method == "GET") {
      ++lookups;
      EXPECT_TRUE(absl::StartsWith(r.target, "/api/v2/tickets.json?external_id=msg_")) << r.target;
    } else {
      EXPECT_FALSE(absl::StrContains(r.body, "old lost")) << "no second ticket for the lost one";
    }
  }
  EXPECT_EQ(lookups, 2);
  // The ticket found is the thread's: a follow-up comments on it.
  ASSERT_EQ(daemon.PostSigned(Message("later", "still broken", "conv-lost"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return !zendesk.tickets()[0].follow_ups.empty(); }))
      << daemon.Log();
  EXPECT_EQ(zendesk.tickets()[earlier - 1001].follow_ups.size(), 1u);
}

TEST(HelpdeskTest, PermanentRejectionsAreDeadLetteredWithTheirAnswer) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, "Basic wrong");  // every request is 401
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port())));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("d0", "hello", "c0"), kSecret).status, 200);
  EXPECT_EQ(daemon.WaitForMetric("triage_storage_dead_letters", 1), 1) << daemon.Log();
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="dead_letter"})"), 1);
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "HTTP 401: {\"error\":\"Couldn't authenticate you\"}"));
  EXPECT_EQ(zendesk.http().received().size(), 1u) << "a 401 is not retried";
}

TEST(HelpdeskTest, FreshdeskTicketThenPrivateNoteAndNeverARecreation) {
  TempDir dir;
  ::setenv("TRIAGE_TEST_FRESHDESK_KEY", "fd-key", 1);
  FakeTicketing freshdesk(FakeTicketing::Flavor::kFreshdesk, kFreshdeskAuth);
  freshdesk.Script({FakeTicketing::Fault{.status = 429, .retry_after = "1"}});
  Daemon daemon(dir.path(), Config(dir.path(), Freshdesk(freshdesk.port())));
  daemon.Start();
  const HttpResult r = daemon.PostSigned(
      absl::StrCat("[", Message("a", "lawsuit <now> & more", "conv"), ",", Message("b", "hello?", "conv"), "]"), kSecret);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(freshdesk.http().WaitUntil([&](const auto&) {
    return !freshdesk.tickets().empty() && !freshdesk.tickets()[0].follow_ups.empty();
  })) << daemon.Log();
  ASSERT_EQ(freshdesk.tickets().size(), 1u);
  const FakeTicketing::Ticket ticket = freshdesk.tickets()[0];
  EXPECT_EQ(Field(ticket.create_body, {"priority"}), "3") << "high is Freshdesk priority 3";
  EXPECT_EQ(Field(ticket.create_body, {"status"}), "2");
  EXPECT_EQ(Field(ticket.create_body, {"group_id"}), "7");
  EXPECT_EQ(Field(ticket.create_body, {"twitter_id"}), "handle-author-1");
  EXPECT_TRUE(absl::StartsWith(Field(ticket.create_body, {"description"}), "lawsuit &lt;now&gt; &amp; more<br>"));
  EXPECT_TRUE(HasTag(ticket.create_body, "team_support", false));
  EXPECT_EQ(Field(ticket.follow_ups[0], {"private"}), "true");
  EXPECT_TRUE(absl::StartsWith(Field(ticket.follow_ups[0], {"body"}), "hello?"));
  for (const auto& request : freshdesk.http().received()) {
    EXPECT_EQ(request.headers.at("authorization"), kFreshdeskAuth);
    EXPECT_EQ(request.headers.count("idempotency-key"), 0u);
  }
  // Restarted once both were acknowledged: no ticket or note is created again.
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 2), 2);
  EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  Daemon again(dir.path(), Config(dir.path(), Freshdesk(freshdesk.port())));
  again.Start();
  // Nothing queued after the restart, nothing in flight: nothing can be sent again.
  const HttpResult queues = HttpCall(again.admin_port(), "GET", "/v1/queues");
  EXPECT_TRUE(absl::StrContains(queues.body, R"("queued":0,)")) << queues.body;
  EXPECT_EQ(again.Metric(R"(triage_delivery_in_flight{destination="helpdesk"})"), 0);
  EXPECT_EQ(freshdesk.tickets().size(), 1u);
  EXPECT_EQ(freshdesk.tickets()[0].follow_ups.size(), 1u);
}

// Freshdesk has no idempotency key: a creation whose answer is lost (or late) is looked up by
// its delivery id tag before it is tried again, and never made twice.
TEST(HelpdeskTest, FreshdeskLostAnswersAreLookedUpNeverCreatedTwice) {
  TempDir dir;
  ::setenv("TRIAGE_TEST_FRESHDESK_KEY", "fd-key", 1);
  FakeTicketing freshdesk(FakeTicketing::Flavor::kFreshdesk, kFreshdeskAuth);
  using Fault = FakeTicketing::Fault;
  freshdesk.Script({
      Fault{.reset = true, .after_serving = true},                       // created, answer lost
      Fault{.status = 503},                                              // the lookup fails: retried
      Fault{.after_serving = true, .delay = absl::Milliseconds(1500)},  // (lookup) found, but too late
  });
  Daemon daemon(dir.path(), Config(dir.path(), Freshdesk(freshdesk.port())));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("l1", "refund please", "conv-l"), kSecret).status, 200);
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 1), 1)
      << daemon.Log();
  EXPECT_EQ(freshdesk.tickets().size(), 1u) << "no second ticket";
  int lookups = 0;
  for (const auto& r : freshdesk.http().received()) lookups += absl::StartsWith(r.target, "/api/v2/search/tickets") ? 1 : 0;
  EXPECT_GE(lookups, 2);
  // The ticket carries its delivery id as a tag: what the lookups searched for.
  simdjson::dom::parser parser;
  int delivery_tags = 0;
  for (simdjson::dom::element tag : parser.parse(freshdesk.tickets()[0].create_body)["tags"].get_array()) {
    const std::string_view text(tag);
    delivery_tags += text.size() == 36 && text.substr(0, 4) == "msg_" ? 1 : 0;
  }
  EXPECT_EQ(delivery_tags, 1) << freshdesk.tickets()[0].create_body;
  // Its follow-up is a note on the ticket that was found.
  ASSERT_EQ(daemon.PostSigned(Message("l2", "hello?", "conv-l"), kSecret).status, 200);
  ASSERT_TRUE(freshdesk.http().WaitUntil([&](const auto&) { return freshdesk.tickets()[0].follow_ups.size() == 1; }))
      << daemon.Log();
  EXPECT_EQ(freshdesk.tickets().size(), 1u);
}

// HubSpot, a type added as one folder, through the whole daemon: a creation whose answer is lost
// is found by its delivery id property and not made again; the follow-up is a note on it. The
// fake keeps tickets and notes as HubSpot's CRM v3 API shapes them.
TEST(HelpdeskTest, HubSpotLostAnswersAreLookedUpAndFollowUpsAreNotes) {
  TempDir dir;
  FakeHelpdesk hubspot;
  std::mutex mu;
  std::vector<std::string> tickets, notes;  // create bodies; note bodies
  bool lose_next_create = true;
  hubspot.Respond([&](const FakeHelpdesk::Received& r) {
    std::lock_guard lock(mu);
    FakeHelpdesk::Reply reply;
    reply.headers["Content-Type"] = "application/json;charset=utf-8";
    if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != "Bearer pat-test") {
      reply.status = 401;
      reply.body = R"({"status":"error","category":"INVALID_AUTHENTICATION"})";
    } else if (r.method == "POST" && r.target == "/crm/v3/objects/tickets") {
      tickets.push_back(r.body);
      reply.status = 201;
      reply.body = absl::StrCat(R"({"id":")", tickets.size() + 500, R"(","properties":{},"archived":false})");
      reply.reset = std::exchange(lose_next_create, false);  // created, answer lost
    } else if (r.method == "POST" && r.target == "/crm/v3/objects/tickets/search") {
      simdjson::dom::parser parser;
      const std::string wanted(std::string_view(parser.parse(r.body)["filterGroups"].at(0)["filters"].at(0)["value"]));
      std::string results;
      int total = 0;
      for (size_t i = 0; i < tickets.size(); ++i) {
        if (absl::StrContains(tickets[i], absl::StrCat(R"("triaged_delivery_id":")", wanted, R"(")"))) {
          absl::StrAppend(&results, total++ ? "," : "", R"({"id":")", i + 501, R"("})");
        }
      }
      reply.body = absl::StrCat(R"({"total":)", total, R"(,"results":[)", results, "]}");
    } else if (r.method == "POST" && r.target == "/crm/v3/objects/notes") {
      notes.push_back(r.body);
      reply.status = 201;
      reply.body = absl::StrCat(R"({"id":")", notes.size() + 900, R"("})");
    } else {
      reply.status = 404;
    }
    return reply;
  });
  const std::string destination = absl::StrCat(R"(  helpdesk:
    type: hubspot
    url: http://127.0.0.1:)", hubspot.port(), R"(
    access_token: pat-test
    group_ids: {support: 77}
    timeout: 1s
    backoff_initial: 20ms
    backoff_max: 100ms
)");
  Daemon daemon(dir.path(), Config(dir.path(), destination));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("h1", "refund please", "conv-h"), kSecret).status, 200);
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 1), 1)
      << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(Message("h2", "hello?", "conv-h"), kSecret).status, 200);
  ASSERT_TRUE(hubspot.WaitUntil([&](const auto&) {
    std::lock_guard lock(mu);
    return !notes.empty();
  })) << daemon.Log();
  std::lock_guard lock(mu);
  ASSERT_EQ(tickets.size(), 1u) << "the lost answer was looked up, not created again";
  EXPECT_TRUE(absl::StrContains(tickets[0], R"("hubspot_owner_id":"77")")) << tickets[0];
  EXPECT_TRUE(absl::StrContains(notes[0], R"("to":{"id":"501"})")) << notes[0];
  EXPECT_TRUE(absl::StrContains(notes[0], R"("associationTypeId":228)")) << notes[0];
}

// Jira Service Management: the first creation's answer is lost; the retry searches the
// delivery id's label (JQL), finds the request and creates nothing; the follow-up is an
// internal comment on it, and a more urgent one raises its priority first.
TEST(HelpdeskTest, JsmLostAnswersAreLookedUpAndFollowUpsAreInternalComments) {
  TempDir dir;
  FakeHelpdesk jsm;
  std::mutex mu;
  std::vector<std::string> requests, comments, raises;  // bodies
  bool lose_next_create = true;
  const std::string auth = "Basic " + absl::Base64Escape("agent@acme.example:atl-token");
  jsm.Respond([&](const FakeHelpdesk::Received& r) {
    std::lock_guard lock(mu);
    FakeHelpdesk::Reply reply;
    reply.headers["Content-Type"] = "application/json;charset=UTF-8";
    if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != auth) {
      reply.status = 401;
      reply.body = R"({"errorMessages":["You are not authenticated."]})";
    } else if (r.method == "POST" && r.target == "/rest/servicedeskapi/request") {
      requests.push_back(r.body);
      reply.status = 201;
      reply.body = absl::StrCat(R"({"issueId":")", requests.size() + 107000, R"(","issueKey":"HELP-)", requests.size(),
                                R"(","requestTypeId":"31","serviceDeskId":"4"})");
      reply.reset = std::exchange(lose_next_create, false);  // created, answer lost
    } else if (r.method == "GET" && absl::StartsWith(r.target, "/rest/api/3/search/jql?")) {
      const size_t at = r.target.find("msg_");
      const std::string wanted = at == std::string::npos ? "" : r.target.substr(at, r.target.find("%22", at) - at);
      std::string issues;
      for (size_t i = 0; i < requests.size(); ++i) {
        if (!wanted.empty() && absl::StrContains(requests[i], absl::StrCat("\"", wanted, "\""))) {
          absl::StrAppend(&issues, issues.empty() ? "" : ",", R"({"id":")", i + 107001, R"(","key":"HELP-)", i + 1, R"("})");
        }
      }
      reply.body = absl::StrCat(R"({"issues":[)", issues, R"(],"isLast":true})");
    } else if (r.method == "POST" && r.target == "/rest/servicedeskapi/request/HELP-1/comment") {
      comments.push_back(r.body);
      reply.status = 201;
      reply.body = absl::StrCat(R"({"id":")", comments.size() + 9000, R"(","public":false})");
    } else if (r.method == "PUT" && r.target == "/rest/api/2/issue/HELP-1") {
      raises.push_back(r.body);
      reply.status = 204;
    } else {
      reply.status = 404;
      reply.body = R"({"errorMessages":["Issue does not exist or you do not have permission to see it."]})";
    }
    return reply;
  });
  const std::string destination = absl::StrCat(R"(  helpdesk:
    type: jsm
    url: http://127.0.0.1:)", jsm.port(), R"(
    email: agent@acme.example
    api_token: atl-token
    service_desk_id: "4"
    request_type_id: "31"
    concurrency: 1
    timeout: 1s
    backoff_initial: 20ms
    backoff_max: 100ms
)");
  Daemon daemon(dir.path(), Config(dir.path(), destination));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("j1", "refund please", "conv-j"), kSecret).status, 200);
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="delivered"})", 1), 1)
      << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(Message("j2", "fire! still nothing", "conv-j"), kSecret).status, 200);
  ASSERT_TRUE(jsm.WaitUntil([&](const auto&) {
    std::lock_guard lock(mu);
    return !comments.empty();
  })) << daemon.Log();
  std::lock_guard lock(mu);
  ASSERT_EQ(requests.size(), 1u) << "the lost answer was looked up, not created again";
  EXPECT_TRUE(absl::StrContains(requests[0], R"("priority":{"name":"Medium"})")) << requests[0];
  EXPECT_TRUE(absl::StrContains(comments[0], R"("public":false)")) << comments[0];
  EXPECT_TRUE(absl::StrContains(comments[0], "Raised by this follow-up: priority normal -> urgent")) << comments[0];
  ASSERT_EQ(raises.size(), 1u);
  EXPECT_TRUE(absl::StrContains(raises[0], R"("priority":{"name":"Highest"})")) << raises[0];
}

TEST(HelpdeskTest, CircuitBreakerStopsCallsThenProbesAndResumes) {
  TempDir dir;
  FakeHelpdesk hook;
  hook.Answer(503);
  const std::string destinations = absl::StrCat(R"(  helpdesk:
    type: slack
    url: http://127.0.0.1:)", hook.port(), R"(/services/T0/B0/x
    rate: 0
    backoff_initial: 10ms
    backoff_max: 20ms
    max_attempts: 1000
    breaker: {failure_ratio: 0.5, window: 4, min_calls: 4, open_for: 1500ms}
)");
  Daemon daemon(dir.path(), Config(dir.path(), destinations));
  daemon.Start();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(daemon.PostSigned(Message(absl::StrCat("b", i), "fire", absl::StrCat("c", i)), kSecret).status, 200);
  }
  const std::string state = R"(triage_delivery_breaker_state{destination="helpdesk"})";
  EXPECT_EQ(daemon.WaitForMetric(state, 1), 1) << daemon.Log();
  hook.Answer(200);
  // After the pause one probe goes; its success closes the breaker and the rest follow.
  ASSERT_TRUE(hook.WaitUntil([](const auto& all) {
    return std::count_if(all.begin(), all.end(), [](const auto& r) { return r.answered == 200; }) >= 5;
  })) << daemon.Log();
  const auto calls = hook.received();
  ASSERT_GE(calls.size(), 5u);
  EXPECT_EQ(calls[3].answered, 503);
  EXPECT_EQ(calls[4].answered, 200) << "the probe after the pause";
  EXPECT_GE(calls[4].at - calls[3].at, absl::Milliseconds(1400)) << "no calls while open (open_for 1500ms)";
  EXPECT_EQ(daemon.Metric(state), 0);
}

TEST(HelpdeskTest, SlackReceivesOnlyTheAlertsItAsksFor) {
  TempDir dir;
  FakeHelpdesk slack;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  const std::string destinations = Zendesk(zendesk.port()) + absl::StrCat(R"(  alerts:
    type: slack
    url: http://127.0.0.1:)", slack.port(), R"(/services/T0/B0/secret
    min_level: high
)");
  Daemon daemon(dir.path(), Config(dir.path(), destinations, "[helpdesk, alerts]"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("s0", "just saying hi", "c0"), kSecret).status, 200);
  ASSERT_EQ(daemon.PostSigned(Message("s1", "fire <everywhere>", "c1"), kSecret).status, 200);
  ASSERT_TRUE(slack.WaitUntil([](const auto& all) { return !all.empty(); })) << daemon.Log();
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 2; }));
  // Nothing is left queued for Slack: every post it will ever get has been made.
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(R"(triage_storage_queue_entries{destination="alerts",level="urgent",team="support"})") <= 0; }));
  const auto posts = slack.received();
  ASSERT_EQ(posts.size(), 1u) << "the low message is not an alert";
  EXPECT_EQ(posts[0].target, "/services/T0/B0/secret");
  EXPECT_EQ(posts[0].headers.count("authorization"), 0u);
  const std::string text = Field(posts[0].body, {"text"});
  EXPECT_TRUE(absl::StartsWith(text, "*[urgent]* support (owner): x from @handle-author-1 (10 followers)")) << text;
  EXPECT_TRUE(absl::StrContains(text, "> fire &lt;everywhere&gt;")) << text;
}

// An alert with ticket_link waits for the helpdesk's ticket and links to it; a follow-up's
// alert links at once. While the helpdesk fails, an alert goes without its link once
// ticket_link_wait has passed, and no attempt of its own is spent waiting.
TEST(HelpdeskTest, SlackAlertsLinkToTheHelpdeskTicketOnceItExists) {
  TempDir dir;
  FakeHelpdesk slack;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  zendesk.Script({{.after_serving = true, .delay = absl::Milliseconds(600)}});  // the first ticket comes late
  const std::string destinations = Zendesk(zendesk.port()) + absl::StrCat(R"(  alerts:
    type: slack
    url: http://127.0.0.1:)", slack.port(), R"(/hook
    ticket_link: helpdesk
    ticket_link_wait: 3s  # margin for a first ticket 600 ms late on either backend
    max_attempts: 1
)");
  Daemon daemon(dir.path(), Config(dir.path(), destinations, "[helpdesk, alerts]"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("k1", "where is my parcel", "ck"), kSecret).status, 200);
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 1; })) << daemon.Log();
  ASSERT_TRUE(slack.WaitUntil([](const auto& all) { return !all.empty(); })) << daemon.Log();
  const std::string url = absl::StrCat("http://127.0.0.1:", zendesk.port(), "/agent/tickets/", zendesk.tickets()[0].id);
  EXPECT_TRUE(absl::EndsWith(Field(slack.received()[0].body, {"text"}), absl::StrCat("\nTicket: <", url, ">")))
      << slack.received()[0].body;
  ASSERT_EQ(daemon.PostSigned(Message("k2", "hello?", "ck"), kSecret).status, 200);
  ASSERT_TRUE(slack.WaitUntil([](const auto& all) { return all.size() >= 2; })) << daemon.Log();
  EXPECT_TRUE(absl::StrContains(Field(slack.received()[1].body, {"text"}), url)) << slack.received()[1].body;

  // The helpdesk fails from now on: the next thread's alert goes without a link, delivered
  // on its first and only attempt (max_attempts 1) after waiting.
  zendesk.FaultEvery(1, {.status = 503});
  ASSERT_EQ(daemon.PostSigned(Message("k3", "another thing", "ck2"), kSecret).status, 200);
  ASSERT_TRUE(slack.WaitUntil([](const auto& all) { return all.size() >= 3; })) << daemon.Log();
  EXPECT_FALSE(absl::StrContains(Field(slack.received()[2].body, {"text"}), "Ticket:")) << slack.received()[2].body;
  EXPECT_GE(daemon.Metric(R"(triage_delivery_attempts_total{destination="alerts",outcome="waiting_for_ticket"})"), 1);
  // Counted once the delivery is recorded, a moment after Slack has it.
  EXPECT_EQ(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="alerts",outcome="delivered"})", 3), 3);
}

// count_interval: each team's open tickets are counted at the helpdesk in the background, a
// token each from the destination's pace, and shown as metrics; support's group fills up.
TEST(HelpdeskTest, OpenTicketsOfEachTeamAreCountedInTheBackground) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  Daemon daemon(dir.path(), Config(dir.path(), Zendesk(zendesk.port(), "    count_interval: 1s\n")));
  daemon.Start();
  const std::string open = R"(triage_helpdesk_open_tickets{destination="helpdesk",team="support"})";
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(open) == 0; })) << daemon.Log();
  for (const char* id : {"n1", "n2"}) {
    ASSERT_EQ(daemon.PostSigned(Message(id, "refund please", id), kSecret).status, 200);
  }
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= 2; })) << daemon.Log();
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(open) == 2; })) << daemon.Log();
  EXPECT_GT(daemon.Metric(R"(triage_helpdesk_open_tickets_counted_timestamp_seconds{destination="helpdesk",team="support"})"),
            1.7e9);
  int counts = 0;
  for (const auto& r : zendesk.http().received()) {
    if (!absl::StartsWith(r.target, "/api/v2/search/count?query=type%3Aticket%20status%3Csolved")) continue;
    ++counts;
    EXPECT_EQ(r.target, "/api/v2/search/count?query=type%3Aticket%20status%3Csolved%20group_id%3A11");
    EXPECT_EQ(r.headers.at("authorization"), kZendeskAuth);
  }
  EXPECT_GE(counts, 2);
  // And, after each, the tickets its agents solved in the last hour (none here).
  EXPECT_EQ(daemon.Metric(R"(triage_helpdesk_solved_last_hour{destination="helpdesk",team="support"})"), 0);
  const HttpResult queues = HttpCall(daemon.admin_port(), "GET", "/v1/queues");
  EXPECT_TRUE(absl::StrContains(queues.body, R"("helpdesk_open":[{"team":"support","tickets":2,"counted_at":")"))
      << queues.body;
}

// 10,000 entries of mixed levels wait in RocksDB when the daemon starts (written with the
// Store, as a burst would leave them). They drain urgent first, never faster than the
// configured rate, through 429s, and a kill -9 halfway loses nothing and duplicates nothing.
TEST(HelpdeskBacklogTest, TenThousandDrainInPriorityOrderAtTheRateThroughThrottlingAndKillNine) {
  TRIAGE_ROCKSDB_ONLY("1,000 deliveries/s");
  constexpr int kEntries = 10'000;
  constexpr int kRate = 1000, kBurst = 20, kConcurrency = 4;
  TempDir dir;
  std::map<std::string, int> rank_of;  // message id -> level rank (0 urgent)
  {
    storage::StoreOptions options;
    options.path = dir.path() + "/db";
    auto store = storage::Store::Open(options, absl::Now());
    ASSERT_TRUE(store.ok()) << store.status();
    std::vector<storage::NewMessage> batch;
    for (int i = 0; i < kEntries; ++i) {
      router::RoutedMessage r;
      r.message.source = "generic";
      r.message.id = absl::StrCat("b", i);
      r.message.platform = "x";
      r.message.author.id = absl::StrCat("a", i);
      r.message.text = absl::StrCat("backlog message ", i);
      r.received_at = absl::Now();
      r.triage.level = static_cast<router::Level>((i * 7) % router::kLevelCount);
      r.triage.team = "support";
      rank_of[r.message.id] = static_cast<int>(r.triage.level);
      storage::NewMessage& m = batch.emplace_back();
      m.key = storage::MessageKey("generic", r.message.id);
      m.ticket_json = router::TicketJson(r);
      m.level = r.triage.level;
      m.deliveries.push_back({"helpdesk", "support", true});
      if (batch.size() == 500) {
        std::promise<storage::IngestResult> done;
        (*store)->Submit(std::move(batch), absl::Now(), [&](storage::IngestResult x) { done.set_value(x); });
        ASSERT_TRUE(done.get_future().get().status.ok());
        batch.clear();
      }
    }
    ASSERT_EQ((*store)->QueuedEntries(), kEntries);
  }
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  zendesk.FaultEvery(2500, FakeTicketing::Fault{.status = 429, .retry_after = "1"});
  // Requesters by email: one request per ticket, so the rate check counts creations only (the
  // end-user requests are tested above).
  const std::string config = Config(
      dir.path(), Zendesk(zendesk.port(), absl::StrCat("    rate: ", kRate, "\n    burst: ", kBurst, "\n    concurrency: ",
                                                       kConcurrency, "\n    requester_email: \"{{author_id}}@customers.example\"\n")));
  {
    Daemon daemon(dir.path(), config);
    daemon.Start();
    // Request 5,000 is answered 429 with Retry-After: 1. The kill comes inside that pause
    // (or the next one), which the restarted daemon must keep (the throttled entry is due when it
    // ends, and nothing of a lower level may go first).
    ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto& all) { return all.size() >= kEntries / 2; },
                                         absl::Seconds(120)))
        << daemon.Log();
    // The attempt is counted once its outcome, the pause included, is stored.
    const auto answers = zendesk.http().received();
    const double throttled =
        static_cast<double>(std::count_if(answers.begin(), answers.end(), [](const auto& r) { return r.answered == 429; }));
    ASSERT_TRUE(WaitFor([&] {
      return daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="throttled"})") >= throttled;
    }));
    EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  }
  Daemon restarted(dir.path(), config);
  restarted.Start();
  ASSERT_TRUE(zendesk.http().WaitUntil([&](const auto&) { return zendesk.tickets().size() >= kEntries; },
                                       absl::Seconds(120)))
      << restarted.Log();
  // Nothing queued and nothing in flight: anything still to come would be a duplicate.
  ASSERT_TRUE(WaitFor([&] {
    double queued = 0;
    for (const char* level : {"urgent", "high", "normal", "low"}) {
      queued += std::max(0.0, restarted.Metric(absl::StrCat(
                                  R"(triage_storage_queue_entries{destination="helpdesk",level=")", level, R"(",team="support"})")));
    }
    return queued == 0 && restarted.Metric(R"(triage_delivery_in_flight{destination="helpdesk"})") == 0;
  }));

  const std::vector<FakeTicketing::Ticket> tickets = zendesk.tickets();
  const auto received = zendesk.http().received();
  EXPECT_EQ(tickets.size(), static_cast<size_t>(kEntries)) << "no ticket created twice";
  auto id_of = [](const std::string& create_body) {
    const std::string text = Field(create_body, {"ticket", "comment", "body"});
    return absl::StrCat("b", text.substr(16, text.find('\n') - 16));  // "backlog message N\n..."
  };
  std::set<std::string> throttled_ids;
  for (const auto& r : received) {
    if (r.answered == 429) throttled_ids.insert(id_of(r.body));
  }
  EXPECT_GE(throttled_ids.size(), 3u);

  std::vector<int> ranks;  // levels in creation order, throttled entries left out
  std::set<std::string> ids;
  for (const FakeTicketing::Ticket& t : tickets) {
    const std::string id = id_of(t.create_body);
    ASSERT_TRUE(rank_of.contains(id)) << t.create_body;
    ids.insert(id);
    if (!throttled_ids.contains(id)) ranks.push_back(rank_of.at(id));
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kEntries)) << "every entry delivered";
  // Only creations in flight at the kill were sent again, and Zendesk replayed them.
  EXPECT_LE(zendesk.idempotent_replays(), kConcurrency);

  // Urgent first: every creation of a level comes before the first of the next level, but
  // for the few requests in flight side by side. (A throttled entry is left out: requests
  // leased while its 429 was on the way may go before its retry.)
  for (int rank = 0; rank + 1 < router::kLevelCount; ++rank) {
    const auto last = std::find(ranks.rbegin(), ranks.rend(), rank);
    const auto first_next = std::find(ranks.begin(), ranks.end(), rank + 1);
    ASSERT_NE(last, ranks.rend());
    ASSERT_NE(first_next, ranks.end());
    const ptrdiff_t last_pos = ranks.rend() - last - 1, first_next_pos = first_next - ranks.begin();
    EXPECT_LT(last_pos, first_next_pos + 2 * kConcurrency) << "level " << rank;
  }

  // Retry-After: 1 holds the whole destination, across the kill -9 too: once the daemon has
  // had 300 ms to read the 429, nothing arrives before the second is over. (The throttled
  // entries were delivered: every id has its ticket, checked above.)
  for (size_t i = 0; i < received.size(); ++i) {
    if (received[i].answered != 429) continue;
    const absl::Time resume = received[i].at + absl::Seconds(1);
    for (size_t next = i + 1; next < received.size() && received[next].at < resume - absl::Milliseconds(20); ++next) {
      EXPECT_LT(received[next].at - received[i].at, absl::Milliseconds(300)) << "request " << next << " in the pause";
    }
  }

  // Never faster than the bucket allows: in any one-second window at most rate + burst
  // requests (5% slack for arrival jitter).
  size_t window_start = 0, busiest = 0;
  for (size_t i = 0; i < received.size(); ++i) {
    while (received[i].at - received[window_start].at >= absl::Seconds(1)) ++window_start;
    busiest = std::max(busiest, i - window_start + 1);
  }
  EXPECT_LE(busiest, static_cast<size_t>(kRate * 1.05 + kBurst));
  const absl::Duration took = received.back().at - received.front().at;
  std::cout << "drained " << received.size() << " requests in " << took << " (busiest second: " << busiest
            << " requests, " << throttled_ids.size() << " answered 429, " << zendesk.idempotent_replays() << " replayed)\n";
}

}  // namespace
}  // namespace triage::testing
