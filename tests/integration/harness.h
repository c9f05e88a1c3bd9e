#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "storage/store.h"
#include "tests/support/backends.h"

namespace triage::testing {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One request on a fresh loopback connection; status 0 when the connection failed.
HttpResult HttpCall(uint16_t port, const std::string& method, const std::string& target,
                    const std::string& body = "",
                    const std::map<std::string, std::string>& headers = {});

// A helpdesk on loopback that speaks HTTP/1.1 with keep-alive, answers with the status it is
// told to (and Retry-After), and records every request it received, in order.
class FakeHelpdesk {
 public:
  struct Received {
    int answered = 0;  // 0 when the connection was reset instead
    absl::Time at;     // when it was read
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };
  // How to answer one request: a status with headers and body, after a delay, or a reset
  // connection (no answer at all).
  struct Reply {
    int status = 200;
    std::map<std::string, std::string> headers;
    std::string body;
    absl::Duration delay = absl::ZeroDuration();
    bool reset = false;
  };
  using Responder = std::function<Reply(const Received&)>;

  FakeHelpdesk();
  // Serves HTTPS with this certificate chain and key (PEM files).
  FakeHelpdesk(const std::string& cert_file, const std::string& key_file);
  ~FakeHelpdesk();

  uint16_t port() const { return port_; }
  void Answer(int status, std::string retry_after = "");
  // Answers with `responder` instead of the fixed status (called from connection threads,
  // one call at a time).
  void Respond(Responder responder);
  std::vector<Received> received();
  // Waits until `done(received)` holds or the timeout passes; returns whether it held.
  bool WaitUntil(const std::function<bool(const std::vector<Received>&)>& done,
                 absl::Duration timeout = absl::Seconds(30));

 private:
  void Serve(boost::asio::ip::tcp::socket socket);
  template <typename Stream>
  void Exchange(Stream& stream);
  void StartAccepting();

  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable changed_;
  int status_ = 200;
  std::string retry_after_;
  Responder responder_;
  std::mutex responder_mu_;
  std::vector<Received> received_;
  std::vector<std::thread> connections_;
  std::vector<boost::asio::ip::tcp::socket*> sockets_;
  bool stopping_ = false;
};

// A Zendesk or Freshdesk ticketing API on loopback, as documented (see
// reference/outbound-helpdesks.md): tickets get ids, follow-ups become comments (Zendesk PUT
// /api/v2/tickets/{id}.json) or notes (Freshdesk POST /api/v2/tickets/{id}/notes), unknown
// tickets are 404, invalid bodies 422 (Zendesk RecordInvalid) or 400 (Freshdesk), a wrong
// Authorization 401. Zendesk's GET /api/v2/tickets.json?external_id= lists the tickets with
// that external_id, and GET /api/v2/search/count?query=... group_id:<id> counts a group's
// unsolved tickets (status<solved), or those solved within the last hour (solved>1hours). Zendesk's Idempotency-Key is honoured: a key seen before replays the
// first answer (x-idempotency-lookup: hit), with another body it is 400
// IdempotentRequestError. Faults can be scripted for the next requests or every n-th one.
class FakeTicketing {
 public:
  enum class Flavor { kZendesk, kFreshdesk };
  struct Fault {
    int status = 0;           // answer this status (e.g. 429, 503, 422) instead of serving...
    std::string retry_after;  // ...with this Retry-After when set
    bool reset = false;       // or reset the connection without an answer
    bool after_serving = false;  // serve the request first, then lose the answer (reset/delay)
    absl::Duration delay = absl::ZeroDuration();  // answer this late
  };
  struct Ticket {
    int64_t id = 0;
    std::string idempotency_key;  // Zendesk
    std::string create_body;
    std::vector<std::string> follow_ups;  // comment / note bodies, in order
    absl::Time solved_at = absl::InfinitePast();  // InfinitePast: open
  };

  FakeTicketing(Flavor flavor, std::string authorization);
  uint16_t port() const { return http_.port(); }
  FakeHelpdesk& http() { return http_; }

  // Zendesk's users/create_or_update: a user per external_id.
  struct User {
    int64_t id = 0;
    std::string external_id;
    std::string body;  // the last create_or_update body
  };

  void Script(std::vector<Fault> faults);  // for the next ticket requests, in order
  void ScriptUsers(std::vector<Fault> faults);  // for the next users requests, in order
  void FaultEvery(int n, Fault fault);     // for every n-th request (after the script)
  std::vector<Ticket> tickets();           // in creation order
  int64_t Seed(std::string create_body);   // a ticket created earlier (e.g. answer lost)
  void Solve(int64_t id);                  // an agent solved it, now
  int idempotent_replays();
  std::vector<User> users();  // in creation order

 private:
  FakeHelpdesk::Reply Serve(const FakeHelpdesk::Received& request);

  const Flavor flavor_;
  const std::string authorization_;
  std::mutex mu_;
  std::deque<Fault> script_;
  std::deque<Fault> user_script_;
  std::vector<User> users_;
  int every_ = 0;
  Fault every_fault_;
  int64_t requests_ = 0;
  std::vector<Ticket> tickets_;
  std::map<std::string, std::pair<std::string, FakeHelpdesk::Reply>> idempotency_;  // key -> body, reply
  int replays_ = 0;
  FakeHelpdesk http_;  // last: stops serving before the state above goes
};

// `yaml` as the daemon in `dir` gets it: unchanged on the default backend; with
// TRIAGE_TEST_BACKEND=jetstream, its storage moved to the shared test cluster under a prefix
// of `dir`'s own (a config that names its backend, or does not parse, stays as it is).
std::string ForBackendUnderTest(const std::string& dir, const std::string& yaml);
// Writes `yaml` (ForBackendUnderTest) as dir/config.yaml, in one rename.
void WriteConfig(const std::string& dir, const std::string& yaml);
// The store a daemon started in `dir` opens (dir/db, or its prefix on the shared cluster), for
// a test to leave entries in it before the daemon starts. Close it before the daemon starts.
absl::StatusOr<std::unique_ptr<storage::Store>> OpenStoreOf(const std::string& dir, absl::Time now);
// For a test of RocksDB on this host (a full disk, its WAL metrics) or of a drain rate the
// JetStream path does not reach (bench/cluster.sh measures it): skipped when the daemons run on
// JetStream, with `why`.
#define TRIAGE_ROCKSDB_ONLY(why)                                                           \
  if (::triage::testing::BackendUnderTest() == "jetstream") GTEST_SKIP() << "RocksDB only: " << (why)

// The real triaged binary, started on a config in `dir` with port 0 listeners (written through
// WriteConfig).
class Daemon {
 public:
  Daemon(std::string dir, std::string config_yaml);
  ~Daemon();

  void Start();              // returns once the ports file appears (ASSERTs otherwise)
  // Hands `fd` (a listening socket) to the next Start as systemd's socket activation does:
  // as fd 3, with LISTEN_FDS=1, LISTEN_PID and LISTEN_FDNAMES=`name`.
  void HandOver(int fd, std::string name);
  // Starts a daemon expected to refuse to start; returns its exit code (-1 if still running
  // after 10 s).
  int StartExpectingExit();
  int Stop(int signal);      // sends `signal`, waits, returns the exit code (or 128+signal)
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t ingest_port() const { return ingest_port_; }
  uint16_t admin_port() const { return admin_port_; }
  std::string Log() const;

  // A signed POST to /webhooks/<source> with the HMAC-SHA256 hex header of the generic source.
  HttpResult PostSigned(const std::string& body, const std::string& secret,
                        const std::string& source = "generic");
  // The value of one metric line from /metrics, e.g. Metric("triage_x{a=\"b\"}"); -1 if absent.
  double Metric(const std::string& series);
  // Polls /metrics until `series` reaches at least `at_least` (counters only grow), for up to
  // 5 s; returns the last value read.
  double WaitForMetric(const std::string& series, double at_least);

 private:
  void Spawn();

  std::string dir_;
  pid_t pid_ = -1;
  int handed_fd_ = -1;
  std::string handed_name_;
  uint16_t ingest_port_ = 0;
  uint16_t admin_port_ = 0;
};

// Writes a test CA (ca.pem) and a server certificate for `names` (e.g. "DNS:localhost")
// signed by it (server.pem, server.key) into `dir`, with the openssl command. False on failure.
bool MakeTestCertificates(const std::string& dir, const std::string& names);

// A command run through the shell, stdout and stderr together, and its exit code (-1 when it
// did not exit normally).
struct CommandRun {
  int exit_code = -1;
  std::string out;
};
CommandRun RunCommand(const std::string& command);
// triagectl (the one built with the tests) with `args`.
CommandRun Triagectl(const std::string& args);

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

// Polls `done` every 10 ms until it holds or the timeout passes; returns whether it held.
bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30));

// The Standard Webhooks secret the tests' webhook destinations sign with.
inline constexpr char kWebhookSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// A scoring section where "fire" makes a message urgent, "lawsuit" high, "refund" normal;
// anything else is low.
inline constexpr char kTestScoring[] = R"(scoring:
  categories:
    critical: {weight: 100, terms: [fire]}
    serious: {weight: 60, terms: [lawsuit]}
    minor: {weight: 30, terms: [refund]}
)";

// One webhook destination to 127.0.0.1:`port`/hook, as a line of the destinations map, with
// more flow-style `options` (e.g. "concurrency: 1, max_attempts: 10").
std::string WebhookDestination(const std::string& name, uint16_t port, const std::string& options = "");

// Teams and routing that send everything to team support, delivered to a webhook
// destination named helpdesk (WebhookDestination with `options`).
std::string SupportToWebhook(uint16_t port, const std::string& options = "");

// The start of a config for a Daemon in `dir`: loopback listeners on port 0, RocksDB under
// `dir`/db, and a generic source signed with `secret`. Tests add teams, routing and
// destinations.
std::string LoopbackConfig(const std::string& dir, const std::string& secret);

// A generic-source message as JSON.
std::string MessageJson(const std::string& id, const std::string& text,
                        const std::string& author = "author-1");

}  // namespace triage::testing
