// Delivery into a real helpdesk: Request Tracker 5 from Debian's packages, started on loopback
// for this suite by tests/fixtures/rt/start-rt.sh, with the real triaged binary in front of it.
// Without RT installed (tests/fixtures/rt/install-rt.sh) the suite is skipped, unless
// TRIAGE_REQUIRE_RT is set (CI sets it): then it fails.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <simdjson.h>
#include <stdio.h>
#include <sys/socket.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/config.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "test-ingest-secret";

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  close(fd);
  return ok ? ntohs(address.sin_port) : 0;
}

// One RT for the whole suite (it takes seconds to start), stopped with SIGTERM to its process
// group at the end.
class RealRt {
 public:
  static RealRt* Start(const std::string& dir) {
    port_ = FreePort();
    const std::string command = absl::StrCat(TRIAGE_FIXTURES, "/rt/start-rt.sh ", dir, "/rt ",
                                             port_, " 2>", dir, "/start-rt.log");
    FILE* out = popen(command.c_str(), "r");
    if (out == nullptr) return nullptr;
    char line[512];
    std::vector<std::string> lines;
    while (fgets(line, sizeof(line), out) != nullptr)
      lines.emplace_back(absl::StripTrailingAsciiWhitespace(line));
    const int status = pclose(out);
    std::ifstream pid_file(dir + "/rt/rt.pid");
    pid_t pid = 0;
    pid_file >> pid;
    if (status != 0 || lines.size() != 2) {
      ADD_FAILURE() << "start-rt.sh failed: " << ReadFile(dir + "/start-rt.log");
      if (pid > 0) kill(-pid, SIGTERM);
      return nullptr;
    }
    auto* rt = new RealRt();
    rt->pid_ = pid;
    rt->token_ = lines[1];
    return rt;
  }
  ~RealRt() {
    kill(-pid_, SIGTERM);  // the master passes it to its workers
    if (!WaitFor([] { return HttpCall(port_, "GET", "/").status == 0; }, absl::Seconds(10)))
      kill(-pid_, SIGKILL);
  }

  static uint16_t port() { return port_; }
  const std::string& token() const { return token_; }

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "") const {
    return HttpCall(port_, method, "/REST/2.0" + target, body,
                    {{"Authorization", "token " + token_}, {"Content-Type", "application/json"}});
  }
  // The tickets a TicketSQL query finds (their ids, as strings).
  std::vector<std::string> Find(const std::string& query) const {
    const HttpResult r = Call("GET", "/tickets?per_page=100&query=" + router::PercentEncode(query));
    std::vector<std::string> ids;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (r.status != 200 || parser.parse(r.body).get(root) != simdjson::SUCCESS) {
      ADD_FAILURE() << r.status << " " << r.body;
      return ids;
    }
    for (simdjson::dom::element item : root["items"].get_array())
      ids.emplace_back(std::string_view(item["id"]));
    return ids;
  }
  // A field of ticket `id` as text ("Priority", "Queue.id", "Requestor.0.id").
  std::string TicketField(const std::string& id, const std::string& path) const {
    const HttpResult r = Call("GET", "/ticket/" + id);
    simdjson::dom::parser parser;
    simdjson::dom::element e;
    if (parser.parse(r.body).get(e) != simdjson::SUCCESS) return "";
    for (absl::string_view key : absl::StrSplit(path, '.')) {
      size_t index = 0;
      const auto next =
          absl::SimpleAtoi(key, &index) ? e.at(index) : e[std::string_view(key.data(), key.size())];
      if (next.get(e) != simdjson::SUCCESS) return "";
    }
    if (e.is_string()) return std::string(std::string_view(e));
    return simdjson::to_string(e);
  }
  // The value of custom field `name` of ticket `id`.
  std::string CustomField(const std::string& id, const std::string& name) const {
    const HttpResult r = Call("GET", "/ticket/" + id);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(r.body).get(root) != simdjson::SUCCESS) return "";
    for (simdjson::dom::element field : root["CustomFields"].get_array()) {
      if (std::string_view(field["name"]) != name) continue;
      for (simdjson::dom::element value : field["values"].get_array())
        return std::string(std::string_view(value));
    }
    return "";
  }
  // The contents of ticket `id`'s comments, in order.
  std::vector<std::string> Comments(const std::string& id) const {
    const HttpResult r = Call("GET", "/ticket/" + id + "/history?per_page=100&fields=Type,Content");
    std::vector<std::string> out;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(r.body).get(root) != simdjson::SUCCESS) return out;
    for (simdjson::dom::element item : root["items"].get_array()) {
      if (std::string_view(item["Type"]) != "Comment") continue;
      // A transaction's content is in its attachments; the history item links them.
      const HttpResult attachments =
          Call("GET", "/transaction/" + std::string(std::string_view(item["id"])) +
                          "/attachments?fields=Content");
      simdjson::dom::parser inner;
      simdjson::dom::element list;
      if (inner.parse(attachments.body).get(list) != simdjson::SUCCESS) continue;
      for (simdjson::dom::element a : list["items"].get_array()) {
        std::string_view content;
        if (a["Content"].get(content) == simdjson::SUCCESS && !content.empty()) {
          std::string decoded;
          out.push_back(
              absl::Base64Unescape(absl::string_view(content.data(), content.size()), &decoded)
                  ? decoded
                  : std::string(content));
        }
      }
    }
    return out;
  }

 private:
  static inline uint16_t port_ = 0;
  pid_t pid_ = 0;
  std::string token_;
};

class RtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access("/usr/share/request-tracker5/libexec/rt-server", X_OK) != 0) return;
    dir_ = new TempDir();
    rt_ = RealRt::Start(dir_->path());
  }
  static void TearDownTestSuite() {
    delete rt_;
    rt_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (rt_ != nullptr) return;
    if (std::getenv("TRIAGE_REQUIRE_RT") != nullptr) {
      FAIL() << "TRIAGE_REQUIRE_RT is set, but no RT runs (tests/fixtures/rt/install-rt.sh, then "
                "see the log)";
    }
    GTEST_SKIP() << "Request Tracker 5 is not installed: tests/fixtures/rt/install-rt.sh";
  }

  // A daemon delivering to RT at `url`, the token read from a file, teams support (default),
  // billing (informed of anything on fire) and legal (takes urgent or high threats of a lawyer),
  // and pr, which has no queue in RT.
  std::string Config(const std::string& dir, const std::string& url) {
    std::ofstream(dir + "/rt.token") << rt_->token() << "\n";
    // The admin API readable without a token: the dead letters are checked.
    const std::string base = absl::StrReplaceAll(
        LoopbackConfig(dir, kSecret), {{"admin: {listen: 127.0.0.1:0}",
                                        "admin: {listen: 127.0.0.1:0, read_without_token: true}"}});
    return base + absl::StrReplaceAll(R"(SCORING
teams:
  support: {destinations: [rt]}
  billing: {destinations: [rt]}
  legal: {destinations: [rt]}
  pr: {destinations: [rt]}
routing:
  default_team: support
  rules:
    - {name: legal-threat, when: {text_regex: lawyer, levels: [urgent, high]}, team: legal}
    - {name: loud, when: {text_regex: fire}, inform: [billing]}
    - {name: press, when: {text_regex: journalist}, team: pr}
destinations:
  rt:
    type: rt
    url: URL
    token: {file: DIR/rt.token}
    requester_email: "{{platform}}-{{author_id}}@customers.invalid"
    custom_fields: {Platform: "{{platform}}"}
    watchers: {billing: [billing-lead@rt.test]}
    concurrency: 1
    timeout: 5s
    backoff_initial: 20ms
    backoff_max: 200ms
)",
                                      {{"DIR", dir}, {"SCORING\n", kTestScoring}, {"URL", url}});
  }

  static std::string Message(const std::string& id, const std::string& text,
                             const std::string& conversation) {
    return absl::StrCat(R"({"id":")", id, R"(","platform":"x","text":")", text,
                        R"(","created_at":"2026-11-30T10:00:00Z","conversation_id":")",
                        conversation, R"(","author":{"id":"a-)", conversation, R"(","handle":"h)",
                        conversation, R"("}})");
  }

  static inline TempDir* dir_ = nullptr;
  static inline RealRt* rt_ = nullptr;
};

// A low question, then in the same conversation an urgent legal threat that mentions a fire:
// one ticket, created in support's queue with the customer as requester, then raised to
// priority 100 and moved to legal's queue, with the follow-up as a comment saying so. Billing,
// informed, joins that ticket rather than getting its own.
TEST_F(RtTest, OneTicketPerConversationRaisedAndMovedByAFollowUp) {
  TempDir dir;
  Daemon daemon(dir.path(), Config(dir.path(), absl::StrCat("http://127.0.0.1:", RealRt::port())));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("q1", "how do I change my plan", "c1"), kSecret).status, 200);
  std::vector<std::string> tickets;
  ASSERT_TRUE(WaitFor([&] {
    return !(tickets = rt_->Find("CF.{Platform} = 'x' AND Requestor = 'x-a-c1@customers.invalid'"))
                .empty();
  })) << daemon.Log();
  const std::string id = tickets[0];
  EXPECT_EQ(rt_->Find("Queue = 'support'"), std::vector<std::string>{id});
  const std::string support_queue = rt_->TicketField(id, "Queue.id");
  EXPECT_EQ(rt_->TicketField(id, "Priority"), "0");
  EXPECT_TRUE(absl::StartsWith(rt_->TicketField(id, "Subject"), "[low] x"))
      << rt_->TicketField(id, "Subject");
  EXPECT_TRUE(absl::StartsWith(rt_->CustomField(id, "TriagedDeliveryId"), "msg_"))
      << rt_->CustomField(id, "TriagedDeliveryId");

  ASSERT_EQ(
      daemon.PostSigned(Message("q2", "fire in the shop, I am calling my lawyer", "c1"), kSecret)
          .status,
      200);
  ASSERT_TRUE(WaitFor([&] { return rt_->TicketField(id, "Priority") == "100"; })) << daemon.Log();
  ASSERT_TRUE(WaitFor([&] { return !rt_->Comments(id).empty(); })) << daemon.Log();
  EXPECT_NE(rt_->TicketField(id, "Queue.id"), support_queue);
  EXPECT_EQ(rt_->Find("Queue = 'legal'"), std::vector<std::string>{id});
  const std::string comment = rt_->Comments(id)[0];
  EXPECT_TRUE(absl::StrContains(
      comment, "Raised by this follow-up: priority low -> urgent, team support -> legal"))
      << comment;
  EXPECT_EQ(rt_->Find("Requestor = 'x-a-c1@customers.invalid'").size(), 1u)
      << "one conversation, one ticket";
  // Created before billing was informed: billing's watcher is not on it (RT is told of watchers
  // on creation only).
  EXPECT_EQ(rt_->TicketField(id, "AdminCc.0.id"), "");

  // The type's own count and lookup requests, answered by the real RT.
  const absl::StatusOr<config::Config> config = config::LoadConfigString(
      Config(dir.path(), absl::StrCat("http://127.0.0.1:", RealRt::port())), "rt.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  const config::DestinationOptions& rt = config->destinations.at(0);
  const router::TicketTemplates templates =
      *router::CompileTemplates(rt.subject_template, rt.body_template, rt.follow_up_template,
                                rt.custom_fields, *rt.type, rt.settings);
  const router::DestinationView view{rt.settings, templates, rt.group_ids};
  for (const auto& [team, open] :
       std::vector<std::pair<std::string, int64_t>>{{"legal", 1}, {"support", 0}}) {
    const HttpResult count =
        HttpCall(RealRt::port(), "GET", rt.type->CountOpenRequest(view, team)->target, "",
                 {{"Authorization", rt.type->Authorization(rt.settings)}});
    ASSERT_EQ(count.status, 200) << count.body;
    EXPECT_EQ(rt.type->OpenCount(count.body).value(), open) << team;
  }
  const HttpResult found = HttpCall(
      RealRt::port(), "GET",
      rt.type->LookupRequest(view, {.delivery_id = rt_->CustomField(id, "TriagedDeliveryId")})
          ->target,
      "", {{"Authorization", rt.type->Authorization(rt.settings)}});
  EXPECT_EQ(rt.type->FoundTicketId(found.body).value(), id) << found.body;
}

// A message that informs billing: one ticket in support's queue, billing's watcher its AdminCc.
TEST_F(RtTest, InformedTeamsJoinTheTicketAsAdminCc) {
  TempDir dir;
  Daemon daemon(dir.path(), Config(dir.path(), absl::StrCat("http://127.0.0.1:", RealRt::port())));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("w1", "fire in the car park", "c5"), kSecret).status, 200);
  std::vector<std::string> tickets;
  ASSERT_TRUE(WaitFor([&] {
    return !(tickets = rt_->Find("Requestor = 'x-a-c5@customers.invalid'")).empty();
  })) << daemon.Log();
  ASSERT_EQ(tickets.size(), 1u);
  EXPECT_EQ(rt_->TicketField(tickets[0], "AdminCc.0.id"), "billing-lead@rt.test");
  EXPECT_EQ(rt_->Find(absl::StrCat("id = ", tickets[0], " AND Queue = 'support'")).size(), 1u);
}

// The answer to a creation is lost after RT made the ticket: the retry finds it by its delivery
// id and never opens a second one; the next follow-up comments on it.
TEST_F(RtTest, ALostCreationAnswerIsFoundByItsDeliveryIdNotCreatedTwice) {
  std::mutex mu;
  int creations = 0;
  FakeHelpdesk proxy;  // forwards to RT, and loses the answer to the first creation
  proxy.Respond([&](const FakeHelpdesk::Received& request) {
    std::map<std::string, std::string> headers;
    for (const char* name : {"authorization", "content-type"}) {
      if (const auto h = request.headers.find(name); h != request.headers.end())
        headers[name] = h->second;
    }
    const HttpResult answer =
        HttpCall(RealRt::port(), request.method, request.target, request.body, headers);
    FakeHelpdesk::Reply reply{.status = answer.status, .body = answer.body};
    reply.headers["Content-Type"] = "application/json";
    std::lock_guard lock(mu);
    if (request.method == "POST" && request.target == "/REST/2.0/ticket" && creations++ == 0)
      reply.reset = true;
    return reply;
  });
  TempDir dir;
  Daemon daemon(dir.path(), Config(dir.path(), absl::StrCat("http://127.0.0.1:", proxy.port())));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(Message("l1", "where is my parcel", "c2"), kSecret).status, 200);
  ASSERT_EQ(daemon.WaitForMetric(
                R"(triage_delivery_attempts_total{destination="rt",outcome="delivered"})", 1),
            1)
      << daemon.Log();
  ASSERT_EQ(daemon.PostSigned(Message("l2", "any news?", "c2"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] {
    return daemon.Metric(
               R"(triage_delivery_attempts_total{destination="rt",outcome="delivered"})") >= 2;
  })) << daemon.Log();
  const std::vector<std::string> tickets = rt_->Find("Requestor = 'x-a-c2@customers.invalid'");
  ASSERT_EQ(tickets.size(), 1u) << "no second ticket after the lost answer";
  EXPECT_EQ(creations, 1) << "the retry looked the ticket up instead";
  const std::vector<std::string> comments = rt_->Comments(tickets[0]);
  ASSERT_EQ(comments.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(comments[0], "any news?")) << comments[0];
}

// The open tickets of each team's queue, counted by the real RT in the background.
TEST_F(RtTest, OpenTicketsOfEachQueueAreCountedInTheBackground) {
  TempDir dir;
  std::string config = Config(dir.path(), absl::StrCat("http://127.0.0.1:", RealRt::port()));
  config = absl::StrReplaceAll(config, {{"    concurrency: 1\n", "    concurrency: 1\n    count_interval: 1s\n"}});
  Daemon daemon(dir.path(), config);
  daemon.Start();
  const int64_t before = static_cast<int64_t>(rt_->Find("Queue = 'billing' AND Status = '__Active__'").size());
  ASSERT_EQ(daemon.PostSigned(Message("o1", "my invoice is wrong", "c6"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return !rt_->Find("Requestor = 'x-a-c6@customers.invalid'").empty(); }))
      << daemon.Log();
  // The invoice rule is not there: support owns it. Counted per queue, as RT counts.
  const int64_t support = static_cast<int64_t>(rt_->Find("Queue = 'support' AND Status = '__Active__'").size());
  ASSERT_TRUE(WaitFor([&] {
    return daemon.Metric(R"(triage_helpdesk_open_tickets{destination="rt",team="support"})") == support;
  })) << daemon.Log();
  EXPECT_TRUE(WaitFor([&] {
    return daemon.Metric(R"(triage_helpdesk_open_tickets{destination="rt",team="billing"})") == before;
  })) << daemon.Log();
  // An agent resolves the ticket: RT's own count of the last hour's resolved tickets (the pace
  // acknowledgements estimate waits from) sees it.
  const std::string ticket = rt_->Find("Requestor = 'x-a-c6@customers.invalid'").at(0);
  ASSERT_EQ(rt_->Call("PUT", "/ticket/" + ticket, R"({"Status":"resolved"})").status, 200);
  const int64_t resolved =
      static_cast<int64_t>(rt_->Find("Queue = 'support' AND Status = 'resolved' AND Resolved > '1 hour ago'").size());
  EXPECT_GE(resolved, 1);
  EXPECT_TRUE(WaitFor([&] {
    return daemon.Metric(R"(triage_helpdesk_solved_last_hour{destination="rt",team="support"})") == resolved;
  })) << daemon.Log();
}

// A team without a queue in RT: RT answers 403 ("No permission to create tickets in the queue
// 'pr'"), which no retry mends: dead-lettered with RT's answer, and nothing else is held up.
TEST_F(RtTest, AQueueRtRefusesIsDeadLetteredWithItsAnswer) {
  TempDir dir;
  Daemon daemon(dir.path(), Config(dir.path(), absl::StrCat("http://127.0.0.1:", RealRt::port())));
  daemon.Start();
  ASSERT_EQ(
      daemon.PostSigned(Message("p1", "I am a journalist, comment please", "c3"), kSecret).status,
      200);
  EXPECT_EQ(daemon.WaitForMetric("triage_storage_dead_letters", 1), 1) << daemon.Log();
  const HttpResult dead = HttpCall(daemon.admin_port(), "GET", "/v1/dead-letters");
  EXPECT_TRUE(absl::StrContains(dead.body, "No permission to create tickets in the queue"))
      << dead.body;
  ASSERT_EQ(daemon.PostSigned(Message("p2", "my invoice is wrong", "c4"), kSecret).status, 200);
  EXPECT_TRUE(WaitFor([&] {
    return rt_->Find("Requestor = 'x-a-c4@customers.invalid'").size() == 1;
  })) << daemon.Log();
}

}  // namespace
}  // namespace triage::testing
