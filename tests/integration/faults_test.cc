// Faults a real host has, on the real binary: a big backlog draining to a file while webhooks
// arrive and SIGTERM comes, slow clients, a long helpdesk outage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "storage/store.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "faults-secret";

// Under the sanitizers everything is several times slower: the same drill on a smaller
// backlog.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kBacklog = 50'000;
#else
constexpr int kBacklog = 250'000;
#endif

// Fills the store under `dir`/db with `count` low entries for destination `out`, 1,000 per
// request, the way ingest stores them.
void FillBacklog(const std::string& dir, int count) {
  storage::StoreOptions options;
  options.path = dir + "/db";
  auto store = storage::Store::Open(options, absl::Now());
  ASSERT_TRUE(store.ok()) << store.status();
  for (int done = 0; done < count;) {
    std::vector<storage::NewMessage> batch;
    for (int i = 0; i < 1000 && done < count; ++i, ++done) {
      storage::NewMessage m;
      m.key = storage::MessageKey("generic", absl::StrCat("backlog-", done));
      m.ticket_json = absl::StrCat(R"({"id":"backlog-)", done, R"(","text":"my order is late"})");
      m.deliveries.push_back({"out", "support", true});
      batch.push_back(std::move(m));
    }
    std::promise<storage::IngestResult> result;
    (*store)->Submit(std::move(batch), absl::Now(),
                     [&](storage::IngestResult r) { result.set_value(std::move(r)); });
    ASSERT_TRUE(result.get_future().get().status.ok());
  }
}

int64_t QueuedIn(const std::string& dir) {
  storage::StoreOptions options;
  options.path = dir + "/db";
  auto store = storage::Store::Open(options, absl::Now());
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? (*store)->QueuedEntries() : -1;
}

// The delivery ids of the lines of a file destination; ADD_FAILUREs on a repeated one unless
// `repeats` (after a kill -9, what was written but not acknowledged is written again).
std::set<std::string> DeliveryIds(const std::string& path, bool repeats = false) {
  std::set<std::string> ids;
  std::istringstream lines(ReadFile(path));
  std::string line;
  while (std::getline(lines, line)) {
    const size_t at = line.find("\"delivery_id\":\"");
    if (at == std::string::npos) continue;
    const std::string id = line.substr(at + 15, line.find('"', at + 15) - at - 15);
    if (!ids.insert(id).second && !repeats) ADD_FAILURE() << "delivered twice: " << id;
  }
  return ids;
}

// A file destination `out` fed by the generic source, with more `server` options.
std::string FileConfig(const std::string& dir, const std::string& server = "") {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0SERVER}
admin: {listen: 127.0.0.1:0, read_without_token: true}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: SECRET}
teams:
  support: {destinations: [out]}
routing: {default_team: support}
destinations:
  out: {type: file, path: DIR/out.jsonl}
)",
                             {{"DIR", dir}, {"SECRET", kSecret}, {"SERVER", server}});
}

TEST(FaultsTest, AFileBacklogDrainsWhileWebhooksAreAnsweredAndSigtermStopsInTime) {
  TRIAGE_ROCKSDB_ONLY("a backlog of 10,000 or more drained at the file sink's rate");
  TempDir dir;
  FillBacklog(dir.path(), kBacklog);
  NotifySocket notify(dir.path() + "/notify.sock");
  ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "1000000", 1);  // pings every 500 ms
  // One I/O thread: before, the file appends ran on it and a webhook waited 43 s.
  Daemon daemon(dir.path(), FileConfig(dir.path(), ", io_threads: 1, shutdown_timeout: 3s"));
  daemon.Start();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");
  ASSERT_TRUE(WaitFor([&] { return daemon.Metric(R"(triage_delivery_attempts_total{destination="out",outcome="delivered"})") > 100; }));

  const int pings_before = notify.Count("WATCHDOG=1");
  absl::Duration slowest;
  for (int i = 0; i < 20; ++i) {
    const absl::Time start = absl::Now();
    const HttpResult r = daemon.PostSigned(MessageJson(absl::StrCat("live-", i), "where is my parcel"), kSecret);
    slowest = std::max(slowest, absl::Now() - start);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // Answered at its normal latency: a group commit, never behind the file's fdatasyncs. (The
  // bound is loose for slow CI machines; before the fix it was tens of seconds.)
  EXPECT_LT(slowest, absl::Seconds(1)) << "a webhook waited behind the backlog";
  ASSERT_TRUE(WaitFor([&] { return notify.Count("WATCHDOG=1") >= pings_before + 3; }, absl::Seconds(5)))
      << "the watchdog stopped while the backlog drained";

  const absl::Time stop = absl::Now();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  EXPECT_LT(absl::Now() - stop, absl::Seconds(3) + absl::Seconds(2)) << "the stop waited for the backlog";

  // Nothing lost, nothing twice: what the file holds and what is still queued add up.
  const std::set<std::string> delivered = DeliveryIds(dir.path() + "/out.jsonl");
  EXPECT_GT(delivered.size(), 100u);
  EXPECT_LT(delivered.size(), static_cast<size_t>(kBacklog)) << "the test needs a backlog left at the stop";
  EXPECT_EQ(static_cast<int64_t>(delivered.size()) + QueuedIn(dir.path()), kBacklog + 20);
}

// Lines of concurrent workers share one write and one fdatasync; kill -9 in the middle
// loses nothing (a line written but not acknowledged is written again, with its id).
TEST(FaultsTest, AFileSinkLosesNothingUnderKillNine) {
  TRIAGE_ROCKSDB_ONLY("a backlog of 10,000 or more drained at the file sink's rate");
  TempDir dir;
  constexpr int kEntries = 20'000;
  FillBacklog(dir.path(), kEntries);
  {
    Daemon daemon(dir.path(), FileConfig(dir.path()));
    daemon.Start();
    ASSERT_TRUE(WaitFor([&] { return DeliveryIds(dir.path() + "/out.jsonl", true).size() >= kEntries / 4; }));
    EXPECT_EQ(daemon.Stop(SIGKILL), 128 + SIGKILL);
  }
  Daemon again(dir.path(), FileConfig(dir.path()));
  again.Start();
  ASSERT_TRUE(WaitFor([&] {
    return absl::StrContains(HttpCall(again.admin_port(), "GET", "/v1/queues").body, R"("queued":0,)");
  })) << HttpCall(again.admin_port(), "GET", "/v1/queues").body << again.Log();
  EXPECT_EQ(DeliveryIds(dir.path() + "/out.jsonl", true).size(), static_cast<size_t>(kEntries));
}

// What a client that sends one byte every `gap` (after `idle` without sending anything) got
// back: the answer (up to the close) and when it began, from the first byte sent.
struct Trickled {
  std::string answer;
  absl::Duration after_first_byte = absl::InfiniteDuration();
};

Trickled Trickle(uint16_t port, const std::string& request, absl::Duration gap,
                 absl::Duration idle = absl::ZeroDuration()) {
  Trickled out;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return out;
  }
  pollfd readable{fd, POLLIN, 0};
  if (::poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(idle))) > 0) {
    out.answer = "closed while idle";
    ::close(fd);
    return out;
  }
  const absl::Time first = absl::Now();
  for (char c : request) {
    if (::send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
    if (::poll(&readable, 1, static_cast<int>(absl::ToInt64Milliseconds(gap))) > 0) break;  // an answer
  }
  if (::poll(&readable, 1, 5000) > 0) {
    out.after_first_byte = absl::Now() - first;
    char buffer[4096];
    ssize_t n;
    while (::poll(&readable, 1, 2000) > 0 && (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0) {
      out.answer.append(buffer, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// A daemon on loopback whose listener has `timeouts`, routing to a file.
std::string TimeoutsConfig(const std::string& dir, absl::string_view timeouts) {
  return absl::StrCat(absl::StrReplaceAll(LoopbackConfig(dir, kSecret),
                                          {{"server: {listen: 127.0.0.1:0}",
                                            absl::StrCat("server: {listen: 127.0.0.1:0, ", timeouts, "}")}}),
                      "teams: {support: {destinations: [out]}}\n", "routing: {default_team: support}\n",
                      "destinations: {out: {type: file, path: ", dir, "/out.jsonl}}\n");
}

TEST(FaultsTest, SlowHeadersAndSlowBodiesAreAnswered408WithinTheReadTimeout) {
  TempDir dir;
  Daemon daemon(dir.path(), TimeoutsConfig(dir.path(), "read_timeout: 1s, idle_timeout: 30s"));
  daemon.Start();
  // Slowloris: headers that never end, one byte every 100 ms.
  const Trickled headers = Trickle(daemon.ingest_port(),
                                   "POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(200, 'a'),
                                   absl::Milliseconds(100));
  EXPECT_EQ(headers.answer.substr(0, 12), "HTTP/1.1 408") << headers.answer;
  EXPECT_LT(headers.after_first_byte, absl::Seconds(3));
  // A slow body: complete headers, then the body one byte every 100 ms.
  const Trickled body = Trickle(daemon.ingest_port(),
                                "POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" +
                                    std::string(200, '{'),
                                absl::Milliseconds(100));
  EXPECT_EQ(body.answer.substr(0, 12), "HTTP/1.1 408") << body.answer;
  EXPECT_LT(body.after_first_byte, absl::Seconds(3));
  EXPECT_GE(daemon.Metric(R"(triage_http_connections_total{listener="ingest",outcome="timeout"})"), 2);
  // A connection that sends nothing yet is idle, not slow: read_timeout does not close it.
  const Trickled idle =
      Trickle(daemon.ingest_port(), std::string(1, '\0'), absl::Milliseconds(100), absl::Milliseconds(1500));
  EXPECT_EQ(idle.answer.substr(0, 12), "HTTP/1.1 400") << "answered only once it sent something";
}

// A keep-alive connection that sends nothing is closed after idle_timeout, not before; its
// deadline is checked every read_timeout (the shorter), so it closes within one of those late.
TEST(FaultsTest, AnIdleConnectionIsClosedAfterTheIdleTimeout) {
  TempDir dir;
  Daemon daemon(dir.path(), TimeoutsConfig(dir.path(), "read_timeout: 1s, idle_timeout: 3s"));
  daemon.Start();
  const absl::Time start = absl::Now();
  const Trickled early = Trickle(daemon.ingest_port(), std::string(1, '\0'), absl::Milliseconds(100), absl::Seconds(2));
  EXPECT_EQ(early.answer.substr(0, 12), "HTTP/1.1 400") << "still open after 2 s idle";
  const Trickled late = Trickle(daemon.ingest_port(), std::string(1, '\0'), absl::Milliseconds(100), absl::Seconds(6));
  EXPECT_EQ(late.answer, "closed while idle");
  EXPECT_LT(absl::Now() - start, absl::Seconds(2 + 3 + 1 + 1)) << "closed by 3 s idle plus one 1 s step";
  EXPECT_EQ(daemon.Metric(R"(triage_http_connections_total{listener="ingest",outcome="idle_closed"})"), 1);
}

TEST(FaultsTest, ALongOutageIsNoticedWithinProbeMaxOfTheRecovery) {
  TempDir dir;
  FakeHelpdesk helpdesk;
  helpdesk.Answer(503);
  Daemon daemon(dir.path(), LoopbackConfig(dir.path(), kSecret) +
                                SupportToWebhook(helpdesk.port(),
                                                 "concurrency: 4, backoff_initial: 50ms, backoff_max: 10m, "
                                                 "probe_max: 1s, max_attempts: 3, breaker: {min_calls: 4, window: 8}"));
  daemon.Start();
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(daemon.PostSigned(MessageJson(absl::StrCat("m", i), "where is my parcel"), kSecret).status, 200);
  }
  // A long outage next to probe_max: before, the destination's pause doubled with every
  // failed attempt of every worker and reached minutes.
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& r) { return r.size() >= 12; }));
  absl::SleepFor(absl::Seconds(15));
  const size_t during_outage = helpdesk.received().size();
  EXPECT_LT(during_outage, 60u) << "a failing destination probes, it does not hammer";

  helpdesk.Answer(200);
  const absl::Time recovered = absl::Now();
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& r) {
    return std::any_of(r.begin(), r.end(), [](const auto& x) { return x.answered == 200; });
  }));
  absl::Time first_delivered = absl::InfiniteFuture();
  for (const auto& r : helpdesk.received()) {
    if (r.answered == 200) first_delivered = std::min(first_delivered, r.at);
  }
  EXPECT_LT(first_delivered - recovered, absl::Seconds(1) + absl::Milliseconds(700))
      << "recovery noticed within probe_max (1 s), with room for scheduling";
  // Everything goes out, nothing is dead-lettered by the outage (max_attempts 3: the failures
  // during the outage were the destination's, not the entries').
  ASSERT_TRUE(helpdesk.WaitUntil([](const auto& r) {
    return std::count_if(r.begin(), r.end(), [](const auto& x) { return x.answered == 200; }) >= 30;
  })) << daemon.Log();
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_attempts_total{destination="helpdesk",outcome="dead_letter"})"), -1);
}

}  // namespace
}  // namespace triage::testing
