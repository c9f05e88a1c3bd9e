// What systemd sees of triaged: sd_notify messages on a notify socket of the test's own
// (READY, STATUS with the queue depth, WATCHDOG pings from the event loop, RELOADING on
// SIGHUP, STOPPING on SIGTERM), and the unit file passing `systemd-analyze verify`.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

// A datagram socket where a child started with NOTIFY_SOCKET=<path> sends its messages.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path_.copy(address.sun_path, sizeof(address.sun_path) - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0) << path_;
    timeval timeout{0, 100'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    reader_ = std::thread([this] {
      char buffer[4096];
      while (!stopping_) {
        const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
        if (n <= 0) continue;
        std::lock_guard lock(mu_);
        messages_.emplace_back(buffer, static_cast<size_t>(n));
        changed_.notify_all();
      }
    });
  }
  ~NotifySocket() {
    stopping_ = true;
    reader_.join();
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

  // Waits until some message contains `text`; returns its index in arrival order, or -1.
  int WaitFor(const std::string& text, size_t from = 0, absl::Duration timeout = absl::Seconds(10)) {
    std::unique_lock lock(mu_);
    int found = -1;
    changed_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
      for (size_t i = from; i < messages_.size(); ++i) {
        if (absl::StrContains(messages_[i], text)) {
          found = static_cast<int>(i);
          return true;
        }
      }
      return false;
    });
    return found;
  }
  int Count(const std::string& text) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(messages_.begin(), messages_.end(),
                                          [&](const std::string& m) { return absl::StrContains(m, text); }));
  }
  std::string All() {
    std::lock_guard lock(mu_);
    return absl::StrJoin(messages_, " | ");
  }

 private:
  std::string path_;
  int fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<std::string> messages_;
  std::thread reader_;
};

std::string Config(const std::string& dir) {
  return absl::StrReplaceAll(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
storage: {path: DIR/db}
sources:
  generic: {type: generic, secret: s}
teams:
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
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_GE(notify.Count("WATCHDOG=1"), 3) << notify.All();

  ::kill(daemon.pid(), SIGHUP);
  const int reloading = notify.WaitFor("RELOADING=1");
  ASSERT_GE(reloading, 0) << notify.All();
  EXPECT_GT(notify.WaitFor("READY=1", reloading + 1), reloading) << "ready again after the reload";

  EXPECT_EQ(daemon.Stop(SIGTERM), 0);
  EXPECT_GE(notify.WaitFor("STOPPING=1"), 0) << notify.All();
}

std::string ReadFile(const std::string& path);

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
  // RocksDB and process figures: the post was one group commit, so at least one WAL sync.
  EXPECT_GE(daemon.Metric("triage_storage_wal_syncs_total"), 1);
  EXPECT_GT(daemon.Metric("triage_storage_wal_sync_seconds_total"), 0);
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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The shipped unit, with ExecStart pointed at the built binary (verify checks it exists).
TEST(SystemdTest, UnitFilePassesSystemdAnalyzeVerify) {
  const std::string unit = ReadFile(TRIAGE_SOURCE_DIR "/deploy/triaged.service");
  ASSERT_FALSE(unit.empty());
  TempDir dir;
  const std::string copy = dir.path() + "/triaged.service";
  std::ofstream(copy) << absl::StrReplaceAll(unit, {{"/usr/bin/triaged", TRIAGED_BINARY}});
  const std::string output = dir.path() + "/verify.txt";
  const int status = std::system(
      absl::StrCat("systemd-analyze verify --man=no ", copy, " > ", output, " 2>&1").c_str());
  EXPECT_EQ(status, 0) << ReadFile(output);
  EXPECT_EQ(ReadFile(output), "") << "verify prints nothing for a clean unit";
}

}  // namespace
}  // namespace triage::testing
