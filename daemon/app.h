#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "config/config.h"
#include "daemon/admin_api.h"
#include "daemon/delivery.h"
#include "daemon/http_server.h"
#include "daemon/ingest.h"
#include "daemon/metrics.h"
#include "storage/store.h"

namespace triage::daemon {

struct RunOptions {
  std::string config_path;  // re-read on SIGHUP; empty: the embedded config, nothing to reload
  std::string ports_file;   // when set, {"ingest":P,"admin":Q} is written there once bound
  absl::Duration drain_timeout = absl::Seconds(20);
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
  // Re-reads the config file and swaps in its sources, lexicon and rules. A config that fails
  // validation, or changes what only a restart can apply (listeners, storage, destinations),
  // is refused with its reasons and the running one stays.
  absl::Status Reload();

 private:
  asio::awaitable<Response> Admin(Request& request);
  void Shutdown();
  // sd_notify: READY=1 (when `ready`) and a STATUS line with the queue depth.
  void NotifyStatus(bool ready);
  // WATCHDOG=1 pings (when systemd asked for them) and STATUS updates, from the event loop.
  asio::awaitable<void> Heartbeat();
  absl::Status WritePortsFile(uint16_t ingest, uint16_t admin) const;

  const config::Config config_;
  const RunOptions options_;
  asio::io_context io_;
  Metrics metrics_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<Ingest> ingest_;
  std::map<std::string, std::unique_ptr<Dispatcher>> dispatchers_;
  std::unique_ptr<AdminApi> admin_api_;
  std::unique_ptr<HttpServer> public_server_;
  std::unique_ptr<HttpServer> admin_server_;
  asio::strand<asio::io_context::executor_type> heartbeat_strand_{asio::make_strand(io_)};
  std::vector<std::thread> threads_;
  std::atomic<bool> ready_{false};
};

}  // namespace triage::daemon
