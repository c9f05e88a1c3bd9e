// Acknowledgements through the real daemon: a WhatsApp Cloud API fake on loopback that answers
// as Meta documents (ids, the 24-hour window error), a Zendesk fake whose group count is the
// helpdesk's queue, and restarts and kill -9 between the ticket and the acknowledgement.
#include <signal.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "test-ingest-secret";
const std::string kZendeskAuth = "Basic " + std::string("Ym90QGFjbWUuZXhhbXBsZS90b2tlbjp6ZC10b2tlbg==");

// Support delivers to Zendesk (counted every second) and acknowledges WhatsApp messages with
// `ack` added to its acknowledge block.
std::string Config(const std::string& dir, uint16_t zendesk, uint16_t whatsapp, const std::string& ack = "") {
  return absl::StrReplaceAll(R"(log_level: debug
server: {listen: 127.0.0.1:0, io_threads: 2}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
SCORING
teams:
  support:
    destinations: [helpdesk]
    acknowledge:
      via: [wa]
ACK
routing:
  default_team: support
destinations:
  helpdesk:
    type: zendesk
    url: http://127.0.0.1:ZENDESK
    email: bot@acme.example
    api_token: zd-token
    group_ids: {support: 11}
    count_interval: 1s
    timeout: 1s
  wa:
    type: whatsapp
    url: http://127.0.0.1:WHATSAPP/v25.0
    access_token: wa-token
    phone_number_id: "1065"
    rate: 100
    burst: 100
    timeout: 5s
    backoff_initial: 20ms
    backoff_max: 100ms
    probe_max: 200ms
)",
                             {{"DIR", dir},
                              {"SECRET", kSecret},
                              {"SCORING\n", kTestScoring},
                              {"ZENDESK", std::to_string(zendesk)},
                              {"WHATSAPP", std::to_string(whatsapp)},
                              {"ACK\n", ack}});
}

// A WhatsApp DM in the generic source's shape.
std::string WhatsAppMessage(const std::string& id, const std::string& author, const std::string& conversation,
                            const std::string& text = "where is my refund") {
  return absl::StrCat(R"({"id":")", id, R"(","platform":"whatsapp","kind":"direct_message","channel":"private",)",
                      R"("text":")", text, R"(","created_at":"2026-11-23T10:00:00Z","conversation_id":")", conversation,
                      R"(","author":{"id":")", author, R"("}})");
}

// The Cloud API's messages endpoint: a wamid per accepted text, or what `next` scripts.
class FakeWhatsApp {
 public:
  FakeWhatsApp() {
    http_.Respond([this](const FakeHelpdesk::Received& r) {
      std::lock_guard lock(mu_);
      if (r.method != "POST" || r.target != "/v25.0/1065/messages") return Json(404, R"({"error":{"code":100}})");
      if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != "Bearer wa-token") {
        return Json(401, R"({"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}})");
      }
      if (!script_.empty()) {
        FakeHelpdesk::Reply reply = script_.front();
        script_.pop_front();
        return reply;
      }
      ++accepted_;
      return Json(200, absl::StrCat(R"({"messaging_product":"whatsapp","contacts":[{"input":")",
                                    Field(r.body, {"to"}), R"(","wa_id":")", Field(r.body, {"to"}),
                                    R"("}],"messages":[{"id":"wamid.)", accepted_, R"("}]})"));
    });
  }
  uint16_t port() const { return http_.port(); }
  FakeHelpdesk& http() { return http_; }
  void Script(std::vector<FakeHelpdesk::Reply> replies) {
    std::lock_guard lock(mu_);
    script_.assign(replies.begin(), replies.end());
  }
  // The texts sent to `to`, in order.
  std::vector<std::string> TextsTo(const std::string& to) {
    std::vector<std::string> out;
    for (const auto& r : http_.received()) {
      if (r.answered == 200 && Field(r.body, {"to"}) == to) out.push_back(Field(r.body, {"text", "body"}));
    }
    return out;
  }
  static FakeHelpdesk::Reply Json(int status, std::string body) {
    return FakeHelpdesk::Reply{status, {{"Content-Type", "application/json"}}, std::move(body)};
  }

 private:
  std::mutex mu_;
  std::deque<FakeHelpdesk::Reply> script_;
  int accepted_ = 0;
  FakeHelpdesk http_;  // last: stops serving before the state above goes
};

// The acknowledgements metric of the wa destination with `outcome`, for WhatsApp.
std::string Acks(const std::string& outcome) {
  return absl::StrCat(R"(triage_acknowledgements_total{destination="wa",outcome=")", outcome, R"(",platform="whatsapp"})");
}

// The customer hears once per conversation, with their place in line counted from triaged's
// queue and the helpdesk's open tickets, and a wait from the pace tickets left at: the first
// customers, before any pace is known, get the fallback without figures.
TEST(AcknowledgeTest, OncePerConversationWithThePlaceInLineAndTheWaitComputed) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  for (int i = 0; i < 4; ++i) zendesk.Seed(R"({"ticket":{"group_id":11}})");  // agents' backlog
  FakeWhatsApp whatsapp;
  Daemon daemon(dir.path(), Config(dir.path(), zendesk.port(), whatsapp.port()));
  daemon.Start();
  const std::string open = R"(triage_helpdesk_open_tickets{destination="helpdesk",team="support"})";
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(open) == 4; })) << daemon.Log();
  for (int i = 1; i <= 5; ++i) {
    const std::string n = std::to_string(i);
    ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.in" + n, "3161234567" + n, "c" + n), kSecret).status, 200);
  }
  ASSERT_TRUE(WaitFor([&] { return zendesk.tickets().size() == 9 && daemon.Metric(open) == 9; })) << daemon.Log();
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(Acks("sent")) == 5; })) << daemon.Log();
  // No pace measured yet when the first ones went: the fallback, which names no figure.
  const std::vector<std::string> first = whatsapp.TextsTo("31612345671");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(absl::StrContains(first[0], "who will answer you as soon as they can")) << first[0];

  // Five tickets have left triaged now: the sixth customer hears their place and the wait.
  ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.in6", "31612345676", "c6"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return whatsapp.TextsTo("31612345676").size() == 1; })) << daemon.Log();
  const std::string told = whatsapp.TextsTo("31612345676")[0];
  // Ahead: the 9 open tickets of the group (4 from agents, 5 from triaged) whether this one's
  // ticket was still queued here or created and counted (then it is not ahead of itself); 10
  // only if the count ran while its creation was in flight. Its place is one more.
  const size_t at = told.find("you are number ");
  ASSERT_NE(at, std::string::npos) << told;
  int position = 0;
  ASSERT_TRUE(absl::SimpleAtoi(told.substr(at + 15, told.find(' ', at + 15) - at - 15), &position)) << told;
  EXPECT_GE(position, 10) << told;
  EXPECT_LE(position, 11) << told;
  EXPECT_TRUE(absl::StrContains(told, "in our support team's line")) << told;
  // About 60 tickets an hour left triaged (5 in at least 5 minutes' span): 10 ahead is minutes.
  EXPECT_TRUE(absl::StrContains(told, "we expect to answer within 15 minutes")) << told;
  EXPECT_TRUE(absl::StrContains(told, "This is an automated reply")) << told;
  const auto sent = whatsapp.http().received();
  const auto request = std::find_if(sent.begin(), sent.end(),
                                    [](const auto& r) { return Field(r.body, {"to"}) == "31612345676"; });
  ASSERT_NE(request, sent.end());
  EXPECT_EQ(Field(request->body, {"context", "message_id"}), "wamid.in6");
  EXPECT_EQ(Field(request->body, {"type"}), "text");

  // The agents see on the ticket what the customer was told, as an internal note.
  auto noted = [&](const std::string& what) {
    for (const FakeTicketing::Ticket& t : zendesk.tickets()) {
      for (const std::string& note : t.follow_ups) {
        if (absl::StrContains(note, what)) return Field(note, {"ticket", "comment", "public"}) == "false";
      }
    }
    return false;
  };
  EXPECT_TRUE(WaitFor([&] { return noted("Acknowledged to the customer through wa at ") && noted(told); }))
      << daemon.Log();

  // The same customer again in that conversation: not acknowledged twice within once_per.
  ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.in7", "31612345676", "c6", "hello?"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(Acks("already_acknowledged")) == 1; }))
      << daemon.Log();
  EXPECT_EQ(whatsapp.TextsTo("31612345676").size(), 1u);

  // triagectl show says what the customer was told, with WhatsApp's message id, and why the
  // second one was not sent.
  const CommandRun shown = Triagectl(absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " show generic/wamid.in6"));
  EXPECT_EQ(shown.exit_code, 0) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "reply")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "message wamid.")) << shown.out;
  EXPECT_TRUE(absl::StrContains(shown.out, "told the customer: " + told)) << shown.out;
  const CommandRun second = Triagectl(absl::StrCat("--admin 127.0.0.1:", daemon.admin_port(), " show generic/wamid.in7"));
  EXPECT_TRUE(absl::StrContains(second.out, "not sent (already_acknowledged): the conversation was acknowledged at"))
      << second.out;
}

// The helpdesk says how many tickets its agents solved in the last hour: that is the pace,
// before triaged has measured any of its own.
TEST(AcknowledgeTest, TheWaitComesFromWhatTheHelpdesksAgentsSolved) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  for (int i = 0; i < 40; ++i) {
    const int64_t id = zendesk.Seed(R"({"ticket":{"group_id":11}})");
    if (i < 30) zendesk.Solve(id);  // 30 solved in the last hour, 10 open
  }
  FakeWhatsApp whatsapp;
  Daemon daemon(dir.path(), Config(dir.path(), zendesk.port(), whatsapp.port()));
  daemon.Start();
  ASSERT_TRUE(WaitFor([&] {
    return daemon.Metric(R"(triage_helpdesk_solved_last_hour{destination="helpdesk",team="support"})") == 30 &&
           daemon.Metric(R"(triage_helpdesk_open_tickets{destination="helpdesk",team="support"})") == 10;
  })) << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.s1", "31600000010", "s1"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return whatsapp.TextsTo("31600000010").size() == 1; })) << daemon.Log();
  const std::string told = whatsapp.TextsTo("31600000010")[0];
  // 10 open ahead (11 if counted while this one's creation was in flight): number 11 or 12,
  // at 30 an hour about 22 or 24 minutes.
  EXPECT_TRUE(absl::StrContains(told, "you are number 11 ") || absl::StrContains(told, "you are number 12 ")) << told;
  EXPECT_TRUE(absl::StrContains(told, "we expect to answer in about 30 minutes")) << told;
  bool asked = false;
  for (const auto& r : zendesk.http().received()) {
    asked |= r.target == "/api/v2/search/count?query=type%3Aticket%20solved%3E1hours%20group_id%3A11";
  }
  EXPECT_TRUE(asked);
}

// Outside business hours the closed text says when the team is back.
TEST(AcknowledgeTest, OutOfHoursTheCustomerHearsWhenTheTeamIsBack) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  FakeWhatsApp whatsapp;
  // Open for an hour starting two hours from now (UTC): closed now.
  const absl::CivilMinute now = absl::ToCivilMinute(absl::Now(), absl::UTCTimeZone());
  const int from = (now.hour() * 60 + now.minute() + 120) % (24 * 60);
  const int to = std::max(from + 60, 0) % (24 * 60);
  const auto clock = [](int minute) { return absl::StrFormat("\"%02d:%02d\"", minute / 60, minute % 60); };
  const std::string hours = absl::StrCat("      hours: {zone: UTC, from: ", clock(from), ", to: ",
                                         to == 0 ? "\"24:00\"" : clock(to), "}\n");
  Daemon daemon(dir.path(), Config(dir.path(), zendesk.port(), whatsapp.port(), hours));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.night", "31600000001", "n1"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return whatsapp.TextsTo("31600000001").size() == 1; })) << daemon.Log();
  const std::string told = whatsapp.TextsTo("31600000001")[0];
  // "back at 09:00 UTC", or with the day when that is tomorrow ("back at Tuesday 00:05 UTC":
  // the case between 22:00 and 24:00 UTC).
  EXPECT_TRUE(absl::StrContains(told, "is away and back at ")) << told;
  EXPECT_TRUE(absl::StrContains(told, absl::StrFormat("%02d:%02d UTC", from / 60, from % 60))) << told;
  EXPECT_EQ(absl::StrContains(told, "day "), from < now.hour() * 60 + now.minute()) << told;
}

// WhatsApp's 24-hour window error is final: dead-lettered with its reason, never retried.
TEST(AcknowledgeTest, AClosedWindowIsDeadLetteredNotRetried) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  FakeWhatsApp whatsapp;
  whatsapp.Script({FakeWhatsApp::Json(
      400, absl::StrCat(R"({"error":)", ReadFixture("replies/whatsapp_error_131047_object.json"), "}"))});
  Daemon daemon(dir.path(), Config(dir.path(), zendesk.port(), whatsapp.port()));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.late", "31600000002", "w1"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(Acks("window_closed")) == 1; })) << daemon.Log();
  EXPECT_EQ(whatsapp.http().received().size(), 1u);
  const HttpResult dead = HttpCall(daemon.admin_port(), "GET", "/v1/dead-letters?destination=wa");
  EXPECT_TRUE(absl::StrContains(dead.body, "Graph error 131047")) << dead.body;
  EXPECT_TRUE(absl::StrContains(dead.body, "more than 24 hours")) << dead.body;
  ASSERT_TRUE(WaitFor([&] { return zendesk.tickets().size() == 1; })) << "the ticket is not held up";
  // And the agents see why the customer heard nothing.
  ASSERT_TRUE(WaitFor([&] {
    const auto tickets = zendesk.tickets();
    return !tickets[0].follow_ups.empty() &&
           absl::StrContains(tickets[0].follow_ups[0], "The customer could not be acknowledged through wa");
  })) << daemon.Log();
}

// A restart between the ticket and the acknowledgement sends it once: after a failure that
// certainly sent nothing (503), it goes when the daemon is back; after a kill -9 while it was
// on the wire, it is never sent again (no platform deduplicates), and says so.
TEST(AcknowledgeTest, ARestartBetweenTheTicketAndTheAcknowledgementSendsItOnce) {
  TempDir dir;
  FakeTicketing zendesk(FakeTicketing::Flavor::kZendesk, kZendeskAuth);
  FakeWhatsApp whatsapp;
  std::vector<FakeHelpdesk::Reply> down(50, FakeWhatsApp::Json(503, R"({"error":{"code":2,"message":"down"}})"));
  whatsapp.Script(down);
  const std::string config = Config(dir.path(), zendesk.port(), whatsapp.port());
  {
    Daemon daemon(dir.path(), config);
    daemon.Start();
    ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.r1", "31600000003", "r1"), kSecret).status, 200);
    ASSERT_TRUE(whatsapp.http().WaitUntil([](const auto& r) { return r.size() >= 2; })) << daemon.Log();
    ASSERT_TRUE(WaitFor([&] { return zendesk.tickets().size() == 1; }));
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  whatsapp.Script({});
  {
    Daemon daemon(dir.path(), config);
    daemon.Start();
    ASSERT_TRUE(WaitFor([&] { return whatsapp.TextsTo("31600000003").size() == 1; })) << daemon.Log();
    EXPECT_EQ(daemon.Metric(Acks("sent")), 1);
    // On the wire when the daemon dies: the fake answers after the timeout (which alone would
    // also make it "unknown"), and the kill comes first.
    whatsapp.Script({FakeHelpdesk::Reply{200, {}, R"({"messages":[{"id":"wamid.slow"}]})", absl::Seconds(8)}});
    ASSERT_EQ(daemon.PostSigned(WhatsAppMessage("wamid.r2", "31600000004", "r2"), kSecret).status, 200);
    ASSERT_TRUE(WaitFor([&] { return daemon.Metric(R"(triage_delivery_in_flight{destination="wa"})") == 1; }))
        << daemon.Log();
    daemon.Stop(SIGKILL);
  }
  Daemon daemon(dir.path(), config);
  daemon.Start();
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(Acks("unknown")) == 1; })) << daemon.Log();
  // The fake records a request once it has answered it (8 s after it came).
  auto to_r2 = [](const std::vector<FakeHelpdesk::Received>& received) {
    return std::count_if(received.begin(), received.end(),
                         [](const auto& r) { return Field(r.body, {"to"}) == "31600000004"; });
  };
  ASSERT_TRUE(whatsapp.http().WaitUntil([&](const auto& r) { return to_r2(r) >= 1; }));
  EXPECT_EQ(to_r2(whatsapp.http().received()), 1);
  EXPECT_EQ(whatsapp.TextsTo("31600000003").size(), 1u);
  const HttpResult dead = HttpCall(daemon.admin_port(), "GET", "/v1/dead-letters?destination=wa");
  EXPECT_TRUE(absl::StrContains(dead.body, "may have been sent, and is not sent again")) << dead.body;
}

// A platform's reply API on loopback: `serve` answers each request (its path and body), unless
// the script says otherwise first.
class FakePlatform {
 public:
  using Serve = std::function<FakeHelpdesk::Reply(const FakeHelpdesk::Received&)>;
  explicit FakePlatform(Serve serve) : serve_(std::move(serve)) {
    http_.Respond([this](const FakeHelpdesk::Received& r) {
      std::lock_guard lock(mu_);
      if (!script_.empty()) {
        FakeHelpdesk::Reply reply = script_.front();
        script_.pop_front();
        return reply;
      }
      return serve_(r);
    });
  }
  uint16_t port() const { return http_.port(); }
  FakeHelpdesk& http() { return http_; }
  void Script(std::vector<FakeHelpdesk::Reply> replies) {
    std::lock_guard lock(mu_);
    script_.assign(replies.begin(), replies.end());
  }

 private:
  std::mutex mu_;
  std::deque<FakeHelpdesk::Reply> script_;
  Serve serve_;
  FakeHelpdesk http_;  // last: stops serving before the state above goes
};

std::string ReplyConfig(const std::string& dir, const std::string& destination, const std::string& ack) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
teams:
  support: {destinations: [tickets], acknowledge: {via: [replies], ACK}}
routing: {default_team: support}
destinations:
  tickets: {type: file, path: DIR/tickets.jsonl}
  replies: {DESTINATION, timeout: 5s, backoff_initial: 20ms, backoff_max: 100ms, probe_max: 10s}
)",
                             {{"DIR", dir}, {"SECRET", kSecret}, {"DESTINATION", destination}, {"ACK", ack}});
}

std::string PlatformMessage(const std::string& platform, const std::string& kind, const std::string& channel,
                            const std::string& id, const std::string& author) {
  return absl::StrCat(R"({"id":")", id, R"(","platform":")", platform, R"(","kind":")", kind, R"(","channel":")",
                      channel, R"(","text":"my order never arrived","created_at":"2026-11-23T10:00:00Z",)",
                      R"("conversation_id":")", id, R"(","author":{"id":")", author, R"("}})");
}

std::string XAcks(const std::string& outcome, const std::string& platform = "x") {
  return absl::StrCat(R"(triage_acknowledgements_total{destination="replies",outcome=")", outcome,
                      R"(",platform=")", platform, R"("})");
}

// X: a reply to a mention and a DM, as X API v2 takes them; a spent rate window (its headers)
// holds the next reply until it resets; a 429 is retried after its reset; a duplicate-content
// 403 is final; a post that did not engage the brand gets nothing.
TEST(AcknowledgeTest, XRepliesFollowItsRateHeadersAndDuplicatesAreFinal) {
  TempDir dir;
  int posted = 0;
  FakePlatform x([&posted](const FakeHelpdesk::Received& r) {
    if (r.headers.count("authorization") == 0 || r.headers.at("authorization") != "Bearer x-user-token") {
      return FakeWhatsApp::Json(401, R"({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})");
    }
    ++posted;
    if (r.target == "/2/tweets") {
      return FakeWhatsApp::Json(201, absl::StrCat(R"({"data":{"id":"18000000000000000)", posted, R"(","text":"ok"}})"));
    }
    return FakeWhatsApp::Json(201, absl::StrCat(R"({"data":{"dm_conversation_id":"1-2","dm_event_id":"19)", posted, R"("}})"));
  });
  const std::string reset_in_2s = std::to_string(absl::ToUnixSeconds(absl::Now()) + 2);
  x.Script({FakeHelpdesk::Reply{201,
                                {{"Content-Type", "application/json"},
                                 {"x-rate-limit-limit", "100"},
                                 {"x-rate-limit-remaining", "0"},
                                 {"x-rate-limit-reset", reset_in_2s}},
                                R"({"data":{"id":"1800000000000000001","text":"ok"}})"}});
  Daemon daemon(dir.path(),
                ReplyConfig(dir.path(),
                            absl::StrCat("type: x, url: \"http://127.0.0.1:", x.port(), "\", access_token: x-user-token"),
                            "channels: [private, public]"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "mention", "public", "1790000000000000001", "u1"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("sent")) == 1; })) << daemon.Log();
  const auto first = x.http().received();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].target, "/2/tweets");
  EXPECT_EQ(Field(first[0].body, {"reply", "in_reply_to_tweet_id"}), "1790000000000000001");
  // The window is spent until its reset: the DM waits for it.
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "direct_message", "private", "dm-2", "u2"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("sent")) == 2; })) << daemon.Log();
  const auto second = x.http().received();
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[1].target, "/2/dm_conversations/with/u2/messages");
  EXPECT_GE(second[1].at, absl::FromUnixSeconds(std::stoll(reset_in_2s)) - absl::Milliseconds(5));

  // A 429 says when its window resets (epoch seconds): retried then, not before.
  const std::string reset_again = std::to_string(absl::ToUnixSeconds(absl::Now()) + 2);
  x.Script({FakeHelpdesk::Reply{429,
                                {{"Content-Type", "application/json"},
                                 {"x-rate-limit-remaining", "0"},
                                 {"x-rate-limit-reset", reset_again}},
                                ReadFixture("replies/x_error_rate_limit_429.json")}});
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "direct_message", "private", "dm-3", "u3"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("sent")) == 3; })) << daemon.Log();
  const auto third = x.http().received();
  ASSERT_EQ(third.size(), 4u);
  EXPECT_EQ(third[2].answered, 429);
  EXPECT_GE(third[3].at, absl::FromUnixSeconds(std::stoll(reset_again)) - absl::Milliseconds(5));

  // Duplicate content: final, never retried.
  x.Script({FakeWhatsApp::Json(403, ReadFixture("replies/x_post_error_duplicate_403.json"))});
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "reply", "public", "1790000000000000004", "u4"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("duplicate")) == 1; })) << daemon.Log();
  EXPECT_EQ(x.http().received().size(), 5u);

  // A post that matched without mentioning the brand: no reply at all.
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "post", "public", "1790000000000000005", "u5"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return ReadFile(dir.path() + "/tickets.jsonl").find("1790000000000000005") != std::string::npos; }));
  const HttpResult shown = HttpCall(daemon.admin_port(), "GET", "/v1/messages/generic/1790000000000000005");
  EXPECT_FALSE(absl::StrContains(shown.body, R"("role":"reply")")) << shown.body;
  EXPECT_EQ(x.http().received().size(), 5u);
}

// X with the brand account's OAuth 1.0a keys (which do not expire, unlike OAuth 2.0 user
// tokens): each request is signed over its method and URL with a fresh nonce.
TEST(AcknowledgeTest, XRequestsAreSignedWithOAuth1aWhenGivenKeys) {
  TempDir dir;
  const daemon::OAuth1Credentials keys{"ck", "cs", "tk", "ts"};
  std::vector<std::string> nonces;
  std::mutex mu;
  uint16_t port = 0;
  FakePlatform x([&](const FakeHelpdesk::Received& r) {
    // The header the request should carry, recomputed from its own nonce and timestamp.
    const std::string header = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    auto param = [&](const std::string& name) {
      const size_t at = header.find(name + "=\"");
      if (at == std::string::npos) return std::string();
      const size_t from = at + name.size() + 2;
      return header.substr(from, header.find('"', from) - from);
    };
    int64_t timestamp = 0;
    if (!absl::SimpleAtoi(param("oauth_timestamp"), &timestamp)) timestamp = 0;
    const std::string expected = daemon::OAuth1Authorization(
        "POST", absl::StrCat("http://127.0.0.1:", port, r.target), {}, keys, param("oauth_nonce"), timestamp);
    if (header != expected || absl::AbsDuration(absl::FromUnixSeconds(timestamp) - absl::Now()) > absl::Minutes(5)) {
      return FakeWhatsApp::Json(401, R"({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"})");
    }
    std::lock_guard lock(mu);
    nonces.push_back(param("oauth_nonce"));
    return FakeWhatsApp::Json(201, absl::StrCat(R"({"data":{"dm_conversation_id":"1-2","dm_event_id":"19)", nonces.size(),
                                                R"("}})"));
  });
  port = x.port();
  Daemon daemon(dir.path(),
                ReplyConfig(dir.path(),
                            absl::StrCat("type: x, url: \"http://127.0.0.1:", x.port(),
                                         "\", consumer_key: ck, consumer_secret: cs, token: tk, token_secret: ts"),
                            "channels: [private]"));
  daemon.Start();
  for (const char* author : {"a1", "a2"}) {
    ASSERT_EQ(daemon.PostSigned(PlatformMessage("x", "direct_message", "private", absl::StrCat("dm-", author), author),
                                kSecret)
                  .status,
              200);
  }
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("sent")) == 2; })) << daemon.Log();
  std::lock_guard lock(mu);
  ASSERT_EQ(nonces.size(), 2u);
  EXPECT_NE(nonces[0], nonces[1]);
}

// Meta: a Messenger DM through the Send API and a Facebook comment answered in public; an
// expired Page token (190) is a credentials failure, dead-lettered with Meta's message.
TEST(AcknowledgeTest, MetaRepliesUseTheSendApiAndCommentsAndAnExpiredTokenIsReported) {
  TempDir dir;
  FakePlatform graph([](const FakeHelpdesk::Received& r) {
    // appsecret_proof: hex HMAC-SHA256 of the Page token keyed by the app secret.
    const std::string proof = absl::BytesToHexString(daemon::HmacSha256("app-secret", "page-token"));
    if (!absl::StrContains(r.target, "access_token=page-token&appsecret_proof=" + proof)) {
      return FakeWhatsApp::Json(400, R"({"error":{"message":"An access token is required","type":"OAuthException","code":104}})");
    }
    if (absl::StartsWith(r.target, "/v25.0/me/messages?")) {
      return FakeWhatsApp::Json(200, absl::StrCat(R"({"recipient_id":")", Field(r.body, {"recipient", "id"}),
                                                  R"(","message_id":"m_1"})"));
    }
    return FakeWhatsApp::Json(200, R"({"id":"123_789"})");
  });
  Daemon daemon(dir.path(),
                ReplyConfig(dir.path(),
                            absl::StrCat("type: meta, url: \"http://127.0.0.1:", graph.port(),
                                         "/v25.0\", page_token: page-token, app_secret: app-secret"),
                            "channels: [private, public]"));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("messenger", "direct_message", "private", "mid.1", "psid-1"), kSecret).status,
            200);
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("facebook", "comment", "public", "123_456", "fb-2"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("sent", "messenger")) == 1 && daemon.Metric(XAcks("sent", "facebook")) == 1; }))
      << daemon.Log();
  bool dm = false, comment = false;
  for (const auto& r : graph.http().received()) {
    if (absl::StartsWith(r.target, "/v25.0/me/messages?")) {
      dm = Field(r.body, {"recipient", "id"}) == "psid-1" && Field(r.body, {"messaging_type"}) == "RESPONSE";
    }
    if (absl::StartsWith(r.target, "/v25.0/123_456/comments?")) comment = !Field(r.body, {"message"}).empty();
  }
  EXPECT_TRUE(dm);
  EXPECT_TRUE(comment);

  graph.Script({FakeWhatsApp::Json(
      401, R"({"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}})")});
  ASSERT_EQ(daemon.PostSigned(PlatformMessage("messenger", "direct_message", "private", "mid.3", "psid-3"), kSecret).status,
            200);
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(XAcks("credentials", "messenger")) == 1; })) << daemon.Log();
  const HttpResult dead = HttpCall(daemon.admin_port(), "GET", "/v1/dead-letters?destination=replies");
  EXPECT_TRUE(absl::StrContains(dead.body, "Graph error 190/463: Error validating access token")) << dead.body;
  EXPECT_FALSE(absl::StrContains(daemon.Log(), "page-token")) << "the token stays out of the log";
  EXPECT_FALSE(absl::StrContains(daemon.Log(), "app-secret"));
}

// The newcomer's acknowledgements: one block on the default file sink, once per conversation
// there too (the delivery id stands for the platform's message id).
TEST(AcknowledgeTest, AFileSinkCarriesTheAcknowledgementOncePerConversation) {
  TempDir dir;
  const std::string config = absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
teams:
  support: {destinations: [tickets], acknowledge: {via: [tickets]}}
routing: {default_team: support}
destinations:
  tickets: {type: file, path: DIR/tickets.jsonl}
)",
                                                 {{"DIR", dir.path()}, {"SECRET", kSecret}});
  Daemon daemon(dir.path(), config);
  daemon.Start();
  for (const char* id : {"d1", "d2"}) {
    ASSERT_EQ(daemon.PostSigned(WhatsAppMessage(id, "31600000009", "same"), kSecret).status, 200);
  }
  ASSERT_TRUE(WaitFor([&] {
    return daemon.Metric(R"(triage_acknowledgements_total{destination="tickets",outcome="already_acknowledged",platform="whatsapp"})") == 1;
  })) << daemon.Log();
  const std::string lines = ReadFile(dir.path() + "/tickets.jsonl");
  size_t acknowledgements = 0;
  for (size_t at = 0; (at = lines.find("\"acknowledgement.sent\"", at)) != std::string::npos; ++at) ++acknowledgements;
  EXPECT_EQ(acknowledgements, 1u) << lines;
  EXPECT_TRUE(absl::StrContains(lines, "This is an automated reply")) << lines;
}

}  // namespace
}  // namespace triage::testing
