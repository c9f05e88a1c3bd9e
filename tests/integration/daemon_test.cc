// End-to-end tests: the real triaged binary on loopback, a real RocksDB in a temp dir, and a
// fake helpdesk that speaks HTTP.
#include <signal.h>

#include <gtest/gtest.h>
#include <simdjson.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <sys/wait.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "test-ingest-secret";

// Levels with this lexicon and followers 10 (reach 12): "fire" urgent, "lawsuit" high,
// "refund" normal, anything else low.
std::string Config(const std::string& dir, uint16_t helpdesk_port, const std::string& extra_server = "") {
  return absl::StrReplaceAll(R"(log_level: debug
server:
  listen: 127.0.0.1:0
  io_threads: 2
  max_body_bytes: 4KiB
  EXTRA
admin:
  listen: 127.0.0.1:0
storage:
  path: DIR/db
sources:
  generic: {type: generic, secret: SECRET}
SCORING
teams:
  support: {destinations: [helpdesk]}
  legal: {destinations: [helpdesk]}
routing:
  default_team: support
  rules:
    - {name: legal, when: {categories_any: [serious]}, team: legal}
destinations:
  helpdesk:
    type: webhook
    url: http://127.0.0.1:PORT/hook
    secret: WHSEC
    concurrency: 1
    timeout: 2s
    backoff_initial: 50ms
    backoff_max: 300ms
    max_attempts: 1000
)",
                             {{"DIR", dir},
                              {"SECRET", kSecret},
                              {"SCORING\n", kTestScoring},
                              {"PORT", std::to_string(helpdesk_port)},
                              {"WHSEC", kWebhookSecret},
                              {"EXTRA", extra_server}});
}

struct Delivered {
  std::string id;     // the message id inside the ticket
  std::string level;  // the ticket's triage level
  std::string webhook_id;
};

// Parses a delivery body: {"type":..,"data":{"ticket":{"id":..,"triage":{"level":..}}}}.
Delivered Parse(const FakeHelpdesk::Received& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(r.body);
  Delivered d;
  d.id = std::string(std::string_view(root["data"]["ticket"]["id"]));
  d.level = std::string(std::string_view(root["data"]["ticket"]["triage"]["level"]));
  d.webhook_id = r.headers.at("webhook-id");
  return d;
}

size_t CountAnswered2xx(const std::vector<FakeHelpdesk::Received>& all) {
  return std::count_if(all.begin(), all.end(), [](const auto& r) { return r.answered < 300; });
}

std::set<std::string> DeliveredIds(const std::vector<FakeHelpdesk::Received>& all) {
  std::set<std::string> ids;
  for (const auto& r : all) {
    if (r.answered < 300) ids.insert(Parse(r).id);
  }
  return ids;
}

TEST(DaemonTest, DeliversEverySignedMessageOnceWithValidSignatures) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
  daemon.Start();

  std::set<std::string> sent;
  for (int i = 0; i < 10; ++i) {
    const std::string id = absl::StrCat("single-", i);
    const HttpResult r = daemon.PostSigned(MessageJson(id, "my refund please"), kSecret);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
    sent.insert(id);
  }
  for (int i = 0; i < 5; ++i) {
    const std::string a = absl::StrCat("batch-", i, "-a"), b = absl::StrCat("batch-", i, "-b");
    const HttpResult r = daemon.PostSigned(
        absl::StrCat("[", MessageJson(a, "hello"), ",", MessageJson(b, "lawsuit now"), "]"), kSecret);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body, R"({"accepted":2,"duplicates":0})");
    sent.insert(a);
    sent.insert(b);
  }
  // Redelivered by the network: acknowledged, not stored again.
  const HttpResult again = daemon.PostSigned(MessageJson("single-3", "my refund please"), kSecret);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body, R"({"accepted":0,"duplicates":1})");

  ASSERT_TRUE(helpdesk.WaitUntil([&](const auto& all) { return CountAnswered2xx(all) >= sent.size(); }))
      << daemon.Log();
  const auto key = daemon::StandardWebhooksKey(kWebhookSecret);
  ASSERT_TRUE(key.ok());
  std::set<std::string> webhook_ids;
  for (const FakeHelpdesk::Received& r : helpdesk.received()) {
    const std::string& id = r.headers.at("webhook-id");
    const int64_t timestamp = std::stoll(r.headers.at("webhook-timestamp"));
    EXPECT_EQ(r.headers.at("webhook-signature"),
              daemon::StandardWebhooksSignature(*key, id, timestamp, r.body));
    EXPECT_LT(std::abs(timestamp - absl::ToUnixSeconds(absl::Now())), 300);
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    webhook_ids.insert(id);
  }
  EXPECT_EQ(DeliveredIds(helpdesk.received()), sent);
  EXPECT_EQ(webhook_ids.size(), sent.size()) << "one idempotency key per delivery";
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_messages_total{outcome="duplicate",source="generic"})"), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_router_messages_routed_total{level="high",rule="legal",team="legal"})"), 5);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
}

TEST(DaemonTest, BacklogDrainsUrgentFirstWhenTheHelpdeskComesBack) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  helpdesk.Answer(503);
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
  daemon.Start();

  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"low", "hello there"}, {"normal", "refund"}, {"high", "lawsuit"}, {"urgent", "fire"}};
  for (int round = 0; round < 6; ++round) {
    for (const auto& [level, text] : kinds) {
      const HttpResult r = daemon.PostSigned(MessageJson(absl::StrCat(level, "-", round), text), kSecret);
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return !all.empty(); }));
  helpdesk.Answer(200);
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return CountAnswered2xx(all) >= 24; }))
      << daemon.Log();

  const auto all = helpdesk.received();
  std::set<std::string> failed_once;
  for (const auto& r : all) {
    if (r.answered >= 300) failed_once.insert(Parse(r).id);
  }
  // Entries that never failed were all waiting when the helpdesk came back: they must leave
  // in level order. (Entries that failed wait out their own back-off.)
  const std::map<std::string, int> rank = {{"urgent", 0}, {"high", 1}, {"normal", 2}, {"low", 3}};
  std::vector<int> order;
  for (const auto& r : all) {
    if (r.answered >= 300) continue;
    const Delivered d = Parse(r);
    if (!failed_once.contains(d.id)) order.push_back(rank.at(d.level));
  }
  EXPECT_GE(order.size(), 16u) << "too few entries to judge the order";
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()))
      << "levels in delivery order: " << absl::StrJoin(order, ",");
  EXPECT_EQ(DeliveredIds(all).size(), 24u);
  EXPECT_EQ(CountAnswered2xx(all), 24u) << "nothing delivered twice";
}

TEST(DaemonTest, KillNineWithABacklogLosesNothing) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  helpdesk.Answer(503, "1");
  std::set<std::string> sent;
  {
    Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
    daemon.Start();
    for (int i = 0; i < 40; ++i) {
      const std::string id = absl::StrCat("m-", i);
      const HttpResult r = daemon.PostSigned(MessageJson(id, i % 2 ? "fire" : "refund"), kSecret);
      ASSERT_EQ(r.status, 200) << r.body;
      sent.insert(id);
    }
    EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  }
  helpdesk.Answer(200);
  Daemon restarted(dir.path(), Config(dir.path(), helpdesk.port()));
  restarted.Start();
  ASSERT_TRUE(helpdesk.WaitUntil([&](const auto& all) { return DeliveredIds(all) == sent; }))
      << restarted.Log();
  EXPECT_EQ(restarted.Stop(SIGTERM), 0);
}

// SIGTERM under load: every request answered 200 was stored and is delivered after the
// restart; the others were refused or cut, never answered with anything else.
TEST(DaemonTest, SigtermUnderLoadDrainsAndLosesNothingAcknowledged) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
  daemon.Start();
  std::mutex mu;
  std::set<std::string> acknowledged;
  std::map<int, int> statuses;
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0;; ++i) {
        const std::string id = absl::StrCat("load-", c, "-", i);
        const HttpResult r = daemon.PostSigned(MessageJson(id, i % 3 ? "refund" : "fire"), kSecret);
        std::lock_guard lock(mu);
        ++statuses[r.status];
        if (r.status == 200) acknowledged.insert(id);
        if (r.status == 0) return;  // the daemon is gone
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return acknowledged.size() > 100;
  })) << "the load did not get going";
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
  for (std::thread& t : clients) t.join();
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "event=stopped")) << daemon.Log();
  for (const auto& [status, count] : statuses) {
    EXPECT_TRUE(status == 200 || status == 0 || status == 503) << status << " x" << count;
  }
  ASSERT_GT(acknowledged.size(), 50u) << "the load did not get going";

  Daemon restarted(dir.path(), Config(dir.path(), helpdesk.port()));
  restarted.Start();
  ASSERT_TRUE(helpdesk.WaitUntil([&](const auto& all) {
    const std::set<std::string> delivered = DeliveredIds(all);
    return std::includes(delivered.begin(), delivered.end(), acknowledged.begin(), acknowledged.end());
  })) << "acknowledged but not delivered after the restart";
}

TEST(DaemonTest, BadInputGetsItsStatusAndStoresNothing) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port(), "max_header_bytes: 2KiB"));
  daemon.Start();
  const uint16_t port = daemon.ingest_port();
  const std::string good = MessageJson("good-1", "fire");

  HttpResult r = HttpCall(port, "POST", "/webhooks/generic", good);
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body, R"({"error":"missing or wrong signature"})");
  r = HttpCall(port, "POST", "/webhooks/generic", good, {{"X-Triage-Signature", "sha256=" + std::string(64, 'a')}});
  EXPECT_EQ(r.status, 401);
  r = daemon.PostSigned(good, "not-the-secret");
  EXPECT_EQ(r.status, 401);

  r = daemon.PostSigned(good, kSecret, "nosuchsource");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, R"({"error":"unknown source 'nosuchsource'"})");
  r = HttpCall(port, "POST", "/elsewhere", good);
  EXPECT_EQ(r.status, 404);
  r = HttpCall(port, "GET", "/webhooks/generic");
  EXPECT_EQ(r.status, 405);

  r = daemon.PostSigned(R"({"id":"x",)", kSecret);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed JSON"), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  // The first message is fine, the second is not: the request is refused whole.
  r = daemon.PostSigned(absl::StrCat("[", good, R"(,{"id":"bad","platform":"x","text":"t","created_at":1}])"), kSecret);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error":"[1].author: is required"})");

  const std::string large = MessageJson("large", std::string(5000, 'a'));
  r = daemon.PostSigned(large, kSecret);
  EXPECT_EQ(r.status, 413);
  r = HttpCall(port, "POST", "/webhooks/generic", good, {{"X-Padding", std::string(3000, 'p')}});
  EXPECT_EQ(r.status, 431);

  // Nothing of the above was stored: the good message is new, and the only delivery.
  r = daemon.PostSigned(good, kSecret);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"accepted":1,"duplicates":0})");
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return CountAnswered2xx(all) == 1; }));
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_requests_total{source="generic",status="401"})"), 3);
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_requests_total{source="generic",status="400"})"), 2);
  EXPECT_EQ(daemon.Metric(R"(triage_http_connections_total{listener="ingest",outcome="body_too_large"})"), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_http_connections_total{listener="ingest",outcome="header_too_large"})"), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_ingest_messages_total{outcome="stored",source="generic"})"), 1);
  // The daemon is still serving after all that.
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/readyz").status, 200);
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

TEST(DaemonTest, PermanentRejectionsGoToDeadLetters) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  helpdesk.Answer(422);
  Daemon daemon(dir.path(), Config(dir.path(), helpdesk.port()));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("rejected", "hello"), kSecret).status, 200);
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return all.size() == 1; }));
  // The dead letter is counted once the attempt is recorded.
  EXPECT_EQ(daemon.WaitForMetric("triage_storage_dead_letters", 1), 1);
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="dead_letter"})"), 1);
  EXPECT_EQ(helpdesk.received().size(), 1u) << "a 422 is not retried";
}

// A request of 8 messages wakes as many idle workers as it brings entries, not one: with 4
// workers and a helpdesk that takes 600 ms to answer, 4 go out at once, then the other 4.
TEST(DaemonTest, ABurstGoesOutOnEveryIdleWorkerAtOnce) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  helpdesk.Respond([](const FakeHelpdesk::Received&) {
    return FakeHelpdesk::Reply{200, {}, R"({"ok":true})", absl::Milliseconds(600)};
  });
  Daemon daemon(dir.path(),
                absl::StrReplaceAll(Config(dir.path(), helpdesk.port()), {{"concurrency: 1", "concurrency: 4"}}));
  daemon.Start();
  std::string burst = "[";
  for (int i = 0; i < 8; ++i) absl::StrAppend(&burst, i == 0 ? "" : ",", MessageJson(absl::StrCat("burst-", i), "hello"));
  burst += "]";
  ASSERT_EQ(daemon.PostSigned(burst, kSecret).status, 200);
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return all.size() == 8; }));
  std::vector<absl::Time> sent;
  for (const FakeHelpdesk::Received& r : helpdesk.received()) sent.push_back(r.at);
  std::sort(sent.begin(), sent.end());
  EXPECT_LT(sent[3] - sent[0], absl::Milliseconds(300)) << "the first four were not sent together";
  EXPECT_GE(sent[4] - sent[0], absl::Milliseconds(500)) << "more than 4 at once";
  EXPECT_LT(sent[7] - sent[4], absl::Milliseconds(300)) << "the last four were not sent together";
  EXPECT_EQ(DeliveredIds(helpdesk.received()).size(), 8u);
}

TEST(DaemonTest, CheckConfigReportsPositionsAndExitsNonZero) {
  TempDir dir;
  std::ofstream(dir.path() + "/bad.yaml") << "sources:\n  generic: {type: carrier-pigeon}\n";
  const std::string command = absl::StrCat(TRIAGED_BINARY, " --check-config ", dir.path(),
                                           "/bad.yaml 2>", dir.path(), "/out.txt");
  EXPECT_EQ(WEXITSTATUS(std::system(command.c_str())), 1);
  std::ifstream in(dir.path() + "/out.txt");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_EQ(lines, (std::vector<std::string>{
                       dir.path() + "/bad.yaml:1:1: destinations: is required",
                       dir.path() + "/bad.yaml:1:1: teams: is required",
                       dir.path() + "/bad.yaml:1:1: routing: is required",
                       dir.path() + "/bad.yaml:2:19: sources.generic.type: unknown source type (known: generic, x, meta, telegram, line, threads)",
                   }));
}

}  // namespace
}  // namespace triage::testing

namespace triage::testing {
namespace {

std::string TlsConfig(const std::string& dir, const std::string& host, uint16_t port) {
  return LoopbackConfig(dir, kSecret) + absl::StrReplaceAll(R"(teams:
  support: {destinations: [helpdesk]}
routing: {default_team: support}
destinations:
  helpdesk:
    type: webhook
    url: https://HOST:PORT/hook
    ca_file: DIR/ca.pem
    secret: WHSEC
    backoff_initial: 50ms
    backoff_max: 200ms
)",
                             {{"DIR", dir}, {"HOST", host},
                              {"PORT", std::to_string(port)}, {"WHSEC", kWebhookSecret}});
}

TEST(DaemonTlsTest, DeliversOverHttpsWithTheConfiguredCaAndRefusesAWrongHostName) {
  TempDir dir;
  ASSERT_TRUE(MakeTestCertificates(dir.path(), "DNS:localhost")) << "openssl failed";
  FakeHelpdesk helpdesk(dir.path() + "/server.pem", dir.path() + "/server.key");
  {
    Daemon daemon(dir.path(), TlsConfig(dir.path(), "localhost", helpdesk.port()));
    daemon.Start();
    ASSERT_EQ(daemon.PostSigned(MessageJson("tls-1", "refund"), kSecret).status, 200);
    ASSERT_TRUE(helpdesk.WaitUntil([](const auto& all) { return CountAnswered2xx(all) == 1; }))
        << daemon.Log();
    EXPECT_EQ(Parse(helpdesk.received()[0]).id, "tls-1");
    EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  }
  // The certificate names localhost, not 127.0.0.1: the handshake must fail, nothing is sent,
  // and the entry waits to be retried.
  TempDir other;
  std::filesystem::copy_file(dir.path() + "/ca.pem", other.path() + "/ca.pem");
  Daemon daemon(other.path(), TlsConfig(other.path(), "127.0.0.1", helpdesk.port()));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("tls-2", "refund"), kSecret).status, 200);
  EXPECT_GE(daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="retry"})", 2), 2);
  EXPECT_NE(daemon.Log().find("tls: "), std::string::npos) << daemon.Log();
  EXPECT_EQ(helpdesk.received().size(), 1u) << "only the first daemon's delivery arrived";
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
}

}  // namespace
}  // namespace triage::testing
