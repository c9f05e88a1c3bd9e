#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "config/config.h"
#include "daemon/admin_api.h"
#include "daemon/blocking.h"
#include "daemon/delivery.h"
#include "daemon/feedback.h"
#include "daemon/http_server.h"
#include "daemon/ingest.h"
#include "daemon/metrics.h"
#include "daemon/tls.h"
#include "storage/store.h"

namespace triage::daemon {

struct RunOptions {
  std::string config_path;  // re-read on SIGHUP; empty: the embedded config, nothing to reload
  std::string ports_file;   // when set, {"ingest":P,"admin":Q} is written there once bound
  std::string runtime_dir;  // when set, each reload's outcome is written there (daemon/reload.h)
};

// The running daemon. Start wires the services in order (storage, metrics, delivery,
// listeners) and Run stops them in reverse on SIGTERM/SIGINT: readiness off, listeners closed,
// requests in flight answered, delivery stopped (attempts in flight finish), RocksDB closed.
class App {
 public:
  App(config::Config config, RunOptions options);
  ~App();

  absl::Status Start();
  // Serves until a stop signal; returns the process exit code. SIGHUP reloads.
  int Run();
  // Re-reads the config file and swaps in its sources, lexicon, rules and destinations. A
  // config that fails validation, changes what only a restart can apply (listeners, admin
  // token, storage), or removes a destination that still holds queued entries is refused with
  // its reasons, and the running one stays. A changed destination gets a new dispatcher; the
  // old one stops leasing and finishes its attempts in flight. Pauses (operator's and
  // Retry-After) are stored, so they hold across the swap.
  absl::Status Reload();

 private:
  asio::awaitable<Response> Admin(Request& request);
  Response AdminBlocking(const Request& request);  // on the pool: storage reads and writes
  // The ingest listener: /webhooks/<source> (Ingest) and /feedback/<name> (Feedback).
  asio::awaitable<Response> Public(Request& request, const asio::ip::address& peer);
  // POST /v1/quarantine/replay: parsed again by the running version, through the ingest.
  asio::awaitable<Response> ReplayQuarantine(Request& request);
  // Serves `tls` on the ingest listener from the next connection on.
  void UseTls(ServerTls tls);
  void Shutdown();
  // sd_notify: READY=1 (when `ready`) and a STATUS line with the queue depth.
  void NotifyStatus(bool ready);
  // WATCHDOG=1 pings (when systemd asked for them) and STATUS updates, from the event loop.
  asio::awaitable<void> Heartbeat();
  absl::Status WritePortsFile(uint16_t ingest, uint16_t admin) const;
  absl::StatusOr<std::shared_ptr<Dispatcher>> MakeDispatcher(const config::DestinationOptions& destination);

  config::Config config_;  // the running one: replaced by Reload (signal handler) only
  const RunOptions options_;
  asio::io_context io_;
  Metrics metrics_;
  std::unique_ptr<storage::Store> store_;
  // Storage writes and reads, file appends, admin calls and reloads: never on io_'s threads.
  // Joined after them and before the store closes.
  BlockingPool pool_;
  std::unique_ptr<Ingest> ingest_;
  std::unique_ptr<Feedback> feedback_;
  Dispatchers dispatchers_;
  // What reply entries say; holds the running config's acknowledge blocks.
  std::unique_ptr<Acknowledger> acknowledger_;
  // Swapped out by reloads, kept until their workers have ended (Reload and Shutdown only).
  std::vector<std::shared_ptr<Dispatcher>> retired_;
  std::unique_ptr<AdminApi> admin_api_;
  std::unique_ptr<HttpServer> public_server_;
  std::unique_ptr<HttpServer> admin_server_;
  asio::strand<asio::io_context::executor_type> heartbeat_strand_{asio::make_strand(io_)};
  std::vector<std::thread> threads_;
  std::atomic<bool> ready_{false};
  uint64_t reloads_ = 0;  // reloads run one at a time (App::Run)
};

}  // namespace triage::daemon
