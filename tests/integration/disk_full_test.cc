// A full disk, for real: the database on a small tmpfs that fills up while the daemon runs.
// Needs the right to mount a tmpfs (root, as in CI's container); without it the test says so and
// is skipped (the same states are covered with a fault-injecting file system in store_test).
#include <signal.h>
#include <sys/mount.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/harness.h"
#include "tests/test_util.h"

namespace triage::testing {
namespace {

constexpr char kSecret[] = "disk-full-secret";

// A tmpfs of `megabytes` at `path`, unmounted on destruction.
class Tmpfs {
 public:
  Tmpfs(std::string path, int megabytes) : path_(std::move(path)) {
    std::filesystem::create_directories(path_);
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, absl::StrCat("size=", megabytes, "m").c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Writes 1 MiB blocks into `path` until the disk refuses one; returns the bytes written.
int64_t Fill(const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const std::string block(1 << 20, 'x');
  int64_t written = 0;
  while (out.write(block.data(), static_cast<std::streamsize>(block.size())) && out.flush()) written += block.size();
  return written;
}

// One request of 15 messages of 60 KB: about 1 MB for the WAL.
std::string Bulk(int request) {
  std::string body = "[";
  for (int m = 0; m < 15; ++m) {
    absl::StrAppend(&body, m == 0 ? "" : ",",
                    MessageJson(absl::StrCat("bulk-", request, "-", m), std::string(60 * 1024, 'a' + m % 26)));
  }
  return body + "]";
}

TEST(DiskFullTest, FullIsAStateAnsweredWith503AndResumedWhenSpaceReturns) {
  TRIAGE_ROCKSDB_ONLY("a full disk under this host's store");
  TempDir dir;
  Tmpfs disk(dir.path() + "/disk", 96);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  const std::string config = absl::StrCat(R"(server: {listen: 127.0.0.1:0}
admin: {listen: 127.0.0.1:0}
storage: {path: )", dir.path(), R"(/disk/db}
sources:
  generic: {type: generic, secret: )", kSecret, R"(}
teams:
  support: {destinations: [tickets]}
routing:
  default_team: support
destinations:
  tickets: {type: file, path: )", dir.path(), R"(/tickets.jsonl}
)");
  Daemon daemon(dir.path(), config);
  daemon.Start();
  ASSERT_EQ(daemon.PostSigned(MessageJson("before", "hello"), kSecret).status, 200);

  const std::string filler = dir.path() + "/disk/filler";
  ASSERT_GT(Fill(filler), 0);
  // RocksDB preallocated its log: requests go on until that is used up too, then 503.
  HttpResult refused;
  for (int i = 0; i < 200 && refused.status != 503; ++i) {
    refused = daemon.PostSigned(Bulk(i), kSecret);
    ASSERT_TRUE(refused.status == 200 || refused.status == 503) << refused.status << " " << refused.body;
  }
  ASSERT_EQ(refused.status, 503) << daemon.Log();
  EXPECT_EQ(refused.body, R"({"error":"storage unavailable; retry later"})");  // no path, no RocksDB text
  EXPECT_EQ(refused.headers["retry-after"], "5");
  EXPECT_TRUE(absl::StrContains(daemon.Log(), "No space left on device")) << daemon.Log();
  EXPECT_EQ(daemon.Metric("triage_storage_available"), 0);
  EXPECT_GE(daemon.Metric("triage_storage_errors_total"), 1);
  EXPECT_EQ(HttpCall(daemon.admin_port(), "GET", "/readyz").status, 503);
  // Refused at once while down, and the daemon lives on.
  EXPECT_EQ(daemon.PostSigned(MessageJson("during", "hello"), kSecret).status, 503);
  ASSERT_EQ(::kill(daemon.pid(), 0), 0);

  // Space comes back: RocksDB resumes (once a memtable's worth is free) and so does ingest.
  std::filesystem::remove(filler);
  ASSERT_TRUE(WaitFor([&] { return HttpCall(daemon.admin_port(), "GET", "/readyz").status == 200; },
                      absl::Seconds(60)))
      << daemon.Log();
  EXPECT_EQ(daemon.Metric("triage_storage_available"), 1);
  EXPECT_EQ(daemon.Metric("triage_storage_recoveries_total"), 1);
  ASSERT_EQ(daemon.PostSigned(MessageJson("after", "hello again"), kSecret).status, 200);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(dir.path() + "/tickets.jsonl"), R"("id":"after")"); }));
  EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();

  // Starting on a full disk: a clear error and exit code, not an abort.
  ASSERT_GT(Fill(filler), 0);
  Daemon again(dir.path(), config);
  const int code = again.StartExpectingExit();
  if (code == -1) {
    // RocksDB found room in its preallocated files and started: fine, but then it must answer.
    GTEST_SKIP() << "the database opened in the space it had preallocated";
  }
  EXPECT_EQ(code, 1) << again.Log();
  EXPECT_TRUE(absl::StrContains(again.Log(), "No space left on device")) << again.Log();
}

}  // namespace
}  // namespace triage::testing
