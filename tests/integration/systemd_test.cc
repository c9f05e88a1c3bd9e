// What systemd sees of triaged: sd_notify messages on a notify socket of the test's own
// (READY, STATUS with the queue depth, WATCHDOG pings from the event loop, RELOADING on
// SIGHUP, STOPPING on SIGTERM), and the unit file passing `systemd-analyze verify`.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "daemon/crypto.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

std::string Config(const std::string& dir) {
  return LoopbackConfig(dir, "s") + absl::StrReplaceAll(R"(teams:
  support: {destinations: [out]}
routing: {default_team: support}
destinations:
  out: {type: file, path: DIR/out.jsonl}
)",
                             {{"DIR", dir}});
}

TEST(SystemdTest, NotifiesReadyStatusWatchdogReloadAndStopping) {
  TempDir dir;
  NotifySocket notify(dir.path() + "/notify.sock");
  ::setenv("NOTIFY_SOCKET", notify.path().c_str(), 1);
  ::setenv("WATCHDOG_USEC", "200000", 1);  // 200 ms: pings every 100 ms
  Daemon daemon(dir.path(), Config(dir.path()));
  daemon.Start();
  ::unsetenv("NOTIFY_SOCKET");
  ::unsetenv("WATCHDOG_USEC");

  const int ready = notify.WaitFor("READY=1");
  ASSERT_GE(ready, 0) << notify.All();
  EXPECT_GE(notify.WaitFor("STATUS=serving; queued 0, dead letters 0"), 0) << notify.All();
  EXPECT_TRUE(WaitFor([&] { return notify.Count("WATCHDOG=1") >= 3; }, absl::Seconds(5))) << notify.All();

  ::kill(daemon.pid(), SIGHUP);
  const int reloading = notify.WaitFor("RELOADING=1");
  ASSERT_GE(reloading, 0) << notify.All();
  EXPECT_GT(notify.WaitFor("READY=1", reloading + 1), reloading) << "ready again after the reload";

  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  EXPECT_GE(notify.WaitFor("STOPPING=1"), 0) << notify.All();
}

// The /metrics text passes promtool's linter (names, units, help text), after traffic has
// created the labelled series.
TEST(MetricsTest, MetricsPassPromtoolCheckMetrics) {
  TempDir dir;
  Daemon daemon(dir.path(), Config(dir.path()));
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("m1", "hello"), "s").status, 200);
  ASSERT_EQ(daemon.PostSigned("not json", "s").status, 400);
  daemon.WaitForMetric(R"(triage_delivery_attempts_total{destination="out",outcome="delivered"})", 1);
  const HttpResult metrics = HttpCall(daemon.admin_port(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_TRUE(absl::StrContains(metrics.body, "triage_delivery_breaker_state{destination=\"out\"} 0"));
  EXPECT_EQ(daemon.Metric(R"(triage_delivery_sla_total{destination="out",level="low",outcome="met"})"), 1);
  // RocksDB and process figures: the post was one group commit, so at least one WAL sync (on
  // JetStream the servers sync, and export their own figures).
  if (BackendUnderTest() != "jetstream") {
    EXPECT_GE(daemon.Metric("triage_storage_wal_syncs_total"), 1);
    EXPECT_GT(daemon.Metric("triage_storage_wal_sync_seconds_total"), 0);
  }
  EXPECT_EQ(daemon.Metric("triage_storage_writes_stopped"), 0);
  EXPECT_GT(daemon.Metric("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(daemon.Metric("process_open_fds"), 3);
  EXPECT_NEAR(daemon.Metric("process_start_time_seconds"), absl::ToUnixSeconds(absl::Now()), 60);
  std::ofstream(dir.path() + "/metrics.txt") << metrics.body;
  const std::string output = dir.path() + "/promtool.txt";
  const int status = std::system(
      absl::StrCat("promtool check metrics < ", dir.path(), "/metrics.txt > ", output, " 2>&1").c_str());
  EXPECT_EQ(status, 0) << ReadFile(output);
}

// The shipped units, with ExecStart pointed at the built binary (verify checks it exists).
TEST(SystemdTest, UnitFilesPassSystemdAnalyzeVerify) {
  TempDir dir;
  for (const char* name : {"triaged.service", "triaged.socket"}) {
    const std::string unit = ReadFile(absl::StrCat(TRIAGE_SOURCE_DIR, "/deploy/", name));
    ASSERT_FALSE(unit.empty()) << name;
    std::ofstream(absl::StrCat(dir.path(), "/", name)) << absl::StrReplaceAll(unit, {{"/usr/bin/triaged", TRIAGED_BINARY}});
  }
  const std::string output = dir.path() + "/verify.txt";
  const int status = std::system(absl::StrCat("cd ", dir.path(), " && systemd-analyze verify --man=no ",
                                              "triaged.service triaged.socket > ", output, " 2>&1")
                                     .c_str());
  EXPECT_EQ(status, 0) << ReadFile(output);
  // Verify loads the units ours depend on, and reports the host's own faults too (Debian's
  // request-tracker5.service, which the RT tests install, names units that do not exist):
  // only lines about other unit files of the host are left out.
  std::string ours;
  for (absl::string_view line : absl::StrSplit(ReadFile(output), '\n', absl::SkipEmpty())) {
    const bool host_unit = absl::StartsWith(line, "/lib/systemd/") || absl::StartsWith(line, "/usr/lib/systemd/") ||
                           absl::StartsWith(line, "/etc/systemd/");
    if (!host_unit) absl::StrAppend(&ours, line, "\n");
  }
  EXPECT_EQ(ours, "") << "verify prints nothing for clean units";
}

// A listening socket on loopback, as systemd would hold it; its port in `port`.
int ListeningSocket(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_EQ(::listen(fd, 64), 0);
  socklen_t length = sizeof(address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  *port = ntohs(address.sin_port);
  return fd;
}

// Socket activation: the daemon serves the socket it is handed, and a webhook that connected
// before the daemon was there (a restart) is answered, not refused.
TEST(SystemdTest, SocketActivationServesTheHandedOverListener) {
  TempDir dir;
  uint16_t port = 0;
  const int fd = ListeningSocket(&port);
  // Connected and sent while nothing runs: the kernel queues it.
  HttpResult early;
  std::thread client([&] {
    const std::string body = MessageJson("early", "hello");
    early = HttpCall(port, "POST", "/webhooks/generic", body,
                     {{"X-Triage-Signature", "sha256=" + absl::BytesToHexString(daemon::HmacSha256("s", body))}, {"Content-Type", "application/json"}});
  });
  absl::SleepFor(absl::Milliseconds(200));
  Daemon daemon(dir.path(), Config(dir.path()));
  daemon.HandOver(fd, "ingest");
  daemon.Start();
  client.join();
  EXPECT_EQ(early.status, 200) << early.body << daemon.Log();
  EXPECT_EQ(daemon.ingest_port(), port);
  EXPECT_EQ(daemon.PostSigned(MessageJson("later", "hello"), "s").status, 200);
  EXPECT_NE(daemon.Log().find("event=socket_activated listener=ingest"), std::string::npos) << daemon.Log();
  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  ::close(fd);
}

TEST(SystemdTest, SocketActivationRefusesAnUnknownSocketName) {
  TempDir dir;
  uint16_t port = 0;
  const int fd = ListeningSocket(&port);
  Daemon daemon(dir.path(), Config(dir.path()));
  daemon.HandOver(fd, "metrics");
  EXPECT_EQ(daemon.StartExpectingExit(), 1);
  EXPECT_NE(daemon.Log().find("socket 'metrics' is not one of ingest, admin"), std::string::npos) << daemon.Log();
  ::close(fd);
}

}  // namespace
}  // namespace triage::testing
