#include "daemon/app.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <future>
#include <map>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "daemon/reload.h"
#include "storage/jetstream/jetstream_backend.h"
#include "router/json_writer.h"
#include "daemon/tls.h"

namespace triage::daemon {
namespace {

// Listening sockets systemd handed over (triaged.socket); -1 where none.
struct ActivatedSockets {
  int ingest = -1;
  int admin = -1;
};

// The sockets are named by FileDescriptorName=: "ingest" serves webhooks, "admin" the admin
// API; a single unnamed one is the ingest listener. Anything else is refused.
absl::StatusOr<ActivatedSockets> TakeActivatedSockets() {
  char** names = nullptr;
  const int n = sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  if (n < 0) return absl::InvalidArgumentError(absl::StrCat("socket activation: ", std::strerror(-n)));
  ActivatedSockets sockets;
  absl::Status status;
  for (int i = 0; i < n; ++i) {
    const int fd = SD_LISTEN_FDS_START + i;
    const std::string name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    int* slot = name == "ingest" || (n == 1 && name == "unknown") ? &sockets.ingest
                : name == "admin"                                 ? &sockets.admin
                                                                  : nullptr;
    if (slot == nullptr || *slot != -1) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "socket activation: socket '", name, "' is not one of ingest, admin (FileDescriptorName=)"));
    } else if (sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1, 0) <= 0) {
      status = absl::InvalidArgumentError(
          absl::StrCat("socket activation: socket '", name, "' is not a listening TCP socket"));
    } else {
      *slot = fd;
    }
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) std::free(names[i]);
    std::free(names);
  }
  if (!status.ok()) return status;
  return sockets;
}

std::map<std::string, int64_t> QueuedByDestination(storage::Store& store) {
  std::map<std::string, int64_t> queued;
  for (const storage::QueueDepth& depth : store.Depths(absl::Now())) queued[depth.destination] += depth.entries;
  return queued;
}

}  // namespace

// Threads of the blocking pool: enough for each file destination's appends to wait on the
// disk while acks, admin calls and a reload go on.
constexpr int kBlockingThreads = 4;

App::App(config::Config config, RunOptions options)
    : config_(std::move(config)), options_(std::move(options)), pool_(kBlockingThreads) {}

App::~App() {
  if (!threads_.empty()) Shutdown();
}

absl::Status App::Start() {
  // The lexicon's Hyperscan compile and the models load while RocksDB rebuilds the queue
  // index: a restart takes the longer of the two, not their sum.
  std::future<absl::StatusOr<std::shared_ptr<const Pipeline>>> pipeline_built =
      std::async(std::launch::async, [this] { return Pipeline::Create(config_); });
  storage::StoreOptions store_options;
  store_options.path = config_.storage.path;
  store_options.dedup_window = config_.storage.dedup_window;
  store_options.quarantine_retention = config_.storage.quarantine_retention;
  store_options.max_queued_entries = static_cast<size_t>(config_.storage.max_queued_entries);
  store_options.max_pending_requests = static_cast<size_t>(config_.storage.max_pending_requests);
  store_options.aging_step = config_.storage.aging_step;
  store_options.log = [backend = config_.storage.backend](int severity, absl::string_view line) {
    // The backend's own lines: RocksDB's chatter (flush and compaction summaries) at debug;
    // JetStream's queue ownership (taken, handed over, lost) at warn and error.
    const spdlog::level::level_enum level = severity >= 3   ? spdlog::level::err
                                            : severity == 2 ? spdlog::level::warn
                                                            : spdlog::level::debug;
    spdlog::log(level, "event={} message=\"{}\"", backend, std::string(line));
  };
  const bool jetstream = config_.storage.backend == "jetstream";
  const std::string where = jetstream ? absl::StrCat("the NATS cluster ", absl::StrJoin(config_.storage.jetstream.servers, ","))
                                      : store_options.path;
  absl::StatusOr<std::unique_ptr<storage::Store>> store;
  if (jetstream) {
    storage::JetStreamOptions options;
    options.connect.servers = config_.storage.jetstream.servers;
    options.connect.credentials_file = config_.storage.jetstream.credentials_file;
    options.connect.ca_file = config_.storage.jetstream.ca_file;
    options.connect.timeout = config_.storage.jetstream.publish_timeout;
    options.replicas = static_cast<int>(config_.storage.jetstream.replicas);
    options.prefix = config_.storage.jetstream.prefix;
    options.node = config_.storage.jetstream.node;
    options.leases.ttl = config_.storage.jetstream.lease_ttl;
    absl::StatusOr<std::unique_ptr<storage::JetStreamBackend>> backend =
        storage::JetStreamBackend::Open(options, store_options);
    store = backend.ok() ? storage::Store::Open(*std::move(backend), store_options, absl::Now()) : backend.status();
  } else {
    store = storage::Store::Open(store_options, absl::Now());
  }
  if (!store.ok()) {
    return absl::Status(store.status().code(), absl::StrCat("storage at ", where, ": ", store.status().message()));
  }
  store_ = *std::move(store);
  spdlog::info("event=storage_open backend={} at=\"{}\" queued={} dead_letters={}", config_.storage.backend, where,
               store_->QueuedEntries(), store_->DeadLetterCount());

  acknowledger_ = std::make_unique<Acknowledger>(*store_, dispatchers_);
  acknowledger_->Update(config_);
  for (const config::DestinationOptions& destination : config_.destinations) {
    absl::StatusOr<std::shared_ptr<Dispatcher>> dispatcher = MakeDispatcher(destination);
    if (!dispatcher.ok()) return dispatcher.status();
    dispatchers_.Put(*std::move(dispatcher));
  }
  for (const auto& [destination, queued] : QueuedByDestination(*store_)) {
    if (dispatchers_.Find(destination) == nullptr) {
      spdlog::warn("event=entries_without_destination destination={} queued={} "
                   "note=\"kept; delivered if the destination is configured again\"",
                   destination, queued);
    }
  }
  admin_api_ = std::make_unique<AdminApi>(config_.admin, *store_, dispatchers_);
  store_->SetReadyCallback([this](const std::string& destination, size_t entries) {
    if (const std::shared_ptr<Dispatcher> dispatcher = dispatchers_.Find(destination)) dispatcher->Wake(entries);
  });

  absl::StatusOr<std::shared_ptr<const Pipeline>> pipeline = pipeline_built.get();
  if (!pipeline.ok()) return pipeline.status();
  ingest_ = std::make_unique<Ingest>(*std::move(pipeline), *store_, pool_, metrics_);
  feedback_ = std::make_unique<Feedback>(Feedback::FromConfig(config_), *store_, metrics_);
  const config::ServerOptions& server = config_.server;
  public_server_ = std::make_unique<HttpServer>(
      io_,
      HttpServerOptions{"ingest", server.max_body_bytes, server.max_header_bytes,
                        server.read_timeout, server.idle_timeout, server.max_connections},
      [this](Request& request, const asio::ip::address& peer) { return Public(request, peer); },
      metrics_.http_connections);
  admin_server_ = std::make_unique<HttpServer>(
      io_,
      HttpServerOptions{"admin", 64 << 10, 16 << 10, absl::Seconds(10), absl::Seconds(60), 64},
      [this](Request& request, const asio::ip::address&) { return Admin(request); },
      metrics_.http_connections);
  if (server.tls.enabled()) {
    absl::StatusOr<ServerTls> tls = MakeServerTls(server.tls);
    if (!tls.ok()) return tls.status();
    UseTls(*std::move(tls));
  }

  absl::StatusOr<ActivatedSockets> activated = TakeActivatedSockets();
  if (!activated.ok()) return activated.status();
  auto listen = [](HttpServer& listener, int fd, const config::ListenOptions& listen, const char* name) {
    if (fd < 0) return listener.Listen(listen.address, listen.port);
    spdlog::info("event=socket_activated listener={} note=\"{}:{} from the config is not used\"", name,
                 listen.address, listen.port);
    return listener.Adopt(fd);
  };
  absl::StatusOr<uint16_t> ingest_port = listen(*public_server_, activated->ingest, server.listen, "ingest");
  if (!ingest_port.ok()) return ingest_port.status();
  absl::StatusOr<uint16_t> admin_port = listen(*admin_server_, activated->admin, config_.admin.listen, "admin");
  if (!admin_port.ok()) return admin_port.status();
  if (!options_.ports_file.empty()) {
    if (auto s = WritePortsFile(*ingest_port, *admin_port); !s.ok()) return s;
  }

  for (const std::shared_ptr<Dispatcher>& dispatcher : dispatchers_.All()) dispatcher->Start();
  public_server_->Start();
  admin_server_->Start();
  const int threads = std::max(1, server.io_threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      pthread_setname_np(pthread_self(), "triaged-io");  // top, perf and gdb tell the threads apart
      io_.run();
    });
  }
  ready_ = true;
  spdlog::info("event=ready ingest={} admin={} sources={} destinations={} io_threads={}",
               public_server_->LocalAddress(), admin_server_->LocalAddress(),
               config_.sources.size(), config_.destinations.size(), threads);
  NotifyStatus(true);
  asio::co_spawn(heartbeat_strand_, Heartbeat(), asio::detached);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Dispatcher>> App::MakeDispatcher(
    const config::DestinationOptions& destination) {
  absl::StatusOr<std::unique_ptr<Sender>> sender =
      MakeSender(destination, io_.get_executor(), pool_, storage::Clock::Real());
  if (!sender.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("destination ", destination.name, ": ", sender.status().message()));
  }
  return std::make_shared<Dispatcher>(io_, *store_, pool_, storage::Clock::Real(), destination,
                                      *std::move(sender), metrics_, acknowledger_.get());
}

void App::NotifyStatus(bool ready) {
  // One line a person reads in `systemctl status triaged`.
  const std::string status =
      absl::StrCat(ready ? "READY=1\n" : "", "STATUS=",
                   !ready_ ? "draining" : store_->Health().available ? "serving" : "storage unavailable",
                   "; queued ", store_->QueuedEntries(), ", dead letters ", store_->DeadLetterCount());
  sd_notify(0, status.c_str());
}

asio::awaitable<void> App::Heartbeat() {
  // The pings come from the event loop itself: if its threads stall, systemd sees no WATCHDOG
  // and restarts the service. Status every 5 s at most, pings at half the watchdog period.
  uint64_t watchdog_usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0;
  const absl::Duration period = watchdog ? std::min(absl::Seconds(5), absl::Microseconds(watchdog_usec) / 2)
                                         : absl::Seconds(5);
  asio::steady_timer timer(heartbeat_strand_);
  absl::Time last_status = absl::Now();
  while (ready_) {
    if (watchdog) sd_notify(0, "WATCHDOG=1");
    if (absl::Now() - last_status >= absl::Seconds(5)) {
      NotifyStatus(false);
      last_status = absl::Now();
    }
    timer.expires_after(ToChrono(period));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) break;
  }
}

absl::Status App::WritePortsFile(uint16_t ingest, uint16_t admin) const {
  const std::string temp = options_.ports_file + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << "{\"ingest\":" << ingest << ",\"admin\":" << admin << "}\n";
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", temp));
  }
  if (std::rename(temp.c_str(), options_.ports_file.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", temp));
  }
  return absl::OkStatus();
}

void App::UseTls(ServerTls tls) {
  public_server_->SetTls(std::move(tls.context));
  metrics_.tls_certificate_expiry.Add({}).Set(absl::ToDoubleSeconds(tls.not_after - absl::UnixEpoch()));
  spdlog::info("event=tls_certificate certificate={} not_after={}", config_.server.tls.certificate_file,
               absl::FormatTime(tls.not_after));
}

asio::awaitable<Response> App::Public(Request& request, const asio::ip::address& peer) {
  const absl::string_view target = ToAbsl(request.target());
  absl::string_view path = target.substr(0, target.find('?'));
  if (absl::ConsumePrefix(&path, "/feedback/")) {
    co_return co_await pool_.Run([this, path, &request] { return feedback_->Handle(path, request); });
  }
  co_return co_await ingest_->Handle(request, peer);
}

asio::awaitable<Response> App::Admin(Request& request) {
  const absl::string_view target = ToAbsl(request.target());
  const absl::string_view path = target.substr(0, target.find('?'));
  // Liveness and readiness answer from the I/O thread, whatever the disk is doing.
  if (request.method() == http::verb::get && path == "/healthz") {
    co_return JsonResponse(http::status::ok, "{\"status\":\"ok\"}");
  }
  if (request.method() == http::verb::get && path == "/readyz") {
    if (!ready_) co_return JsonError(http::status::service_unavailable, "not ready (starting or draining)");
    if (!store_->Available()) {
      co_return JsonError(http::status::service_unavailable, "not ready (storage unavailable, resuming)");
    }
    co_return JsonResponse(http::status::ok, "{\"status\":\"ready\"}");
  }
  if (path == "/v1/quarantine/replay") co_return co_await ReplayQuarantine(request);
  co_return co_await pool_.Run([this, &request] { return AdminBlocking(request); });
}

asio::awaitable<Response> App::ReplayQuarantine(Request& request) {
  if (request.method() != http::verb::post) co_return JsonError(http::status::method_not_allowed, "use POST");
  if (std::optional<Response> refused = admin_api_->Refused(request, false)) co_return *std::move(refused);
  absl::StatusOr<std::vector<storage::Store::Quarantined>> items =
      co_await pool_.Run([this, &request] { return admin_api_->ReplayItems(request.body()); });
  if (!items.ok()) {
    const http::status status = items.status().code() == absl::StatusCode::kInvalidArgument ? http::status::bad_request
                                : items.status().code() == absl::StatusCode::kNotFound ? http::status::not_found
                                                                                       : http::status::service_unavailable;
    co_return JsonError(status, items.status().message());
  }
  const std::vector<ReplayOutcome> outcomes = co_await ingest_->Replay(*std::move(items));
  router::JsonWriter w;
  w.BeginObject().Key("replayed").BeginArray();
  for (const ReplayOutcome& o : outcomes) {
    w.BeginObject();
    w.Key("id").Int(static_cast<int64_t>(o.id));
    w.Key("outcome").String(o.outcome);
    w.Key("accepted").Int(o.accepted);
    w.Key("duplicates").Int(o.duplicates);
    w.Key("detail").String(o.detail);
    w.EndObject();
  }
  w.EndArray().EndObject();
  spdlog::info("event=quarantine_replayed items={}", outcomes.size());
  co_return JsonResponse(http::status::ok, w.Take());
}

Response App::AdminBlocking(const Request& request) {
  const absl::string_view target = ToAbsl(request.target());
  const absl::string_view path = target.substr(0, target.find('?'));
  if (std::optional<Response> answer = admin_api_->Handle(request)) return *std::move(answer);
  if (request.method() != http::verb::get) {
    return JsonError(http::status::method_not_allowed, "admin endpoints answer GET");
  }
  if (path == "/metrics") {
    Response response{http::status::ok, 11};
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.body() = metrics_.Render(*store_);
    return response;
  }
  return JsonError(http::status::not_found, "no such admin endpoint");
}

namespace {

// What differs between two configs that a reload cannot apply; empty when nothing.
std::vector<std::string> NeedsRestart(const config::Config& running, const config::Config& next) {
  std::vector<std::string> out;
  auto same_listen = [](const config::ListenOptions& a, const config::ListenOptions& b) {
    return a.address == b.address && a.port == b.port;
  };
  if (!same_listen(running.server.listen, next.server.listen) ||
      running.server.io_threads != next.server.io_threads) {
    out.push_back("server.listen/io_threads");
  }
  if (running.server.tls.enabled() != next.server.tls.enabled()) out.push_back("server.tls (on or off)");
  if (!same_listen(running.admin.listen, next.admin.listen)) out.push_back("admin.listen");
  if (running.admin.token != next.admin.token ||
      running.admin.read_without_token != next.admin.read_without_token) {
    out.push_back("admin.token/read_without_token");
  }
  if (running.storage != next.storage) out.push_back("storage.*");
  return out;
}

const config::DestinationOptions* FindDestination(const config::Config& config, absl::string_view name) {
  for (const config::DestinationOptions& d : config.destinations) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

}  // namespace

absl::Status App::Reload() {
  if (options_.config_path.empty()) {
    return absl::FailedPreconditionError("running on the embedded config: nothing to reload");
  }
  absl::StatusOr<config::Config> next = config::LoadConfigFile(options_.config_path);
  if (!next.ok()) return next.status();
  if (const auto restart = NeedsRestart(config_, *next); !restart.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("these settings need a restart: ", absl::StrJoin(restart, ", ")));
  }
  // A destination leaving the config must hold nothing: its entries would wait for it.
  std::vector<std::string> removed;
  std::vector<std::string> busy;
  const std::map<std::string, int64_t> queued = QueuedByDestination(*store_);
  for (const config::DestinationOptions& d : config_.destinations) {
    if (FindDestination(*next, d.name) != nullptr) continue;
    removed.push_back(d.name);
    if (const auto it = queued.find(d.name); it != queued.end() && it->second > 0) {
      busy.push_back(absl::StrCat(d.name, " (", it->second, " queued)"));
    }
  }
  if (!busy.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "destinations still holding entries cannot be removed: ", absl::StrJoin(busy, ", "),
        "; route nothing to them, let them drain, then remove them"));
  }
  absl::StatusOr<std::shared_ptr<const Pipeline>> pipeline = Pipeline::Create(*next);
  if (!pipeline.ok()) return pipeline.status();
  // The certificate files are read again on every reload: a renewed certificate (same paths)
  // serves the connections accepted from now on; those open keep theirs.
  std::optional<ServerTls> tls;
  if (next->server.tls.enabled()) {
    absl::StatusOr<ServerTls> made = MakeServerTls(next->server.tls);
    if (!made.ok()) return made.status();
    tls = *std::move(made);
  }
  std::vector<std::shared_ptr<Dispatcher>> replacements;  // new or changed destinations
  for (const config::DestinationOptions& d : next->destinations) {
    const config::DestinationOptions* running = FindDestination(config_, d.name);
    if (running != nullptr && *running == d) continue;
    absl::StatusOr<std::shared_ptr<Dispatcher>> dispatcher = MakeDispatcher(d);
    if (!dispatcher.ok()) return dispatcher.status();
    replacements.push_back(*std::move(dispatcher));
  }

  // Everything validated: apply. New dispatchers first, so the new rules find them; an old one
  // stops leasing and its attempts in flight finish (the store's leases keep the two apart).
  for (const std::shared_ptr<Dispatcher>& dispatcher : replacements) {
    if (std::shared_ptr<Dispatcher> old = dispatchers_.Put(dispatcher)) {
      old->Stop();
      retired_.push_back(std::move(old));
    }
    dispatcher->Start();
    spdlog::info("event=destination_{} destination={}",
                 FindDestination(config_, dispatcher->options().name) ? "replaced" : "added",
                 dispatcher->options().name);
  }
  acknowledger_->Update(*next);
  ingest_->Swap(*std::move(pipeline));
  feedback_->Swap(Feedback::FromConfig(*next));
  for (const std::string& name : removed) {
    if (std::shared_ptr<Dispatcher> old = dispatchers_.Remove(name)) {
      old->Stop(/*removed=*/true);
      retired_.push_back(std::move(old));
    }
    spdlog::info("event=destination_removed destination={}", name);
  }
  std::erase_if(retired_, [](const std::shared_ptr<Dispatcher>& d) { return d->stopped(); });
  config_ = *std::move(next);
  if (tls) UseTls(*std::move(tls));
  return absl::OkStatus();
}

int App::Run() {
  asio::signal_set signals(io_, SIGTERM, SIGINT, SIGHUP);
  std::promise<int> stop_signal;
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (!ec && signal == SIGHUP) {
          // Parsing YAML, compiling the lexicon and loading models take a while: on the pool.
          // The next signal is awaited once this reload is done, so reloads never overlap
          // each other or the shutdown.
          pool_.Post([&] {
            sd_notify(0, "RELOADING=1");
            const absl::Status reloaded = Reload();
            NotifyStatus(true);
            metrics_.config_reloads.Add({{"outcome", reloaded.ok() ? "applied" : "refused"}}).Increment();
            if (reloaded.ok()) {
              spdlog::info("event=config_reloaded path={}", options_.config_path);
            } else {
              spdlog::error("event=config_reload_refused path={} error=\"{}\"", options_.config_path,
                            std::string(reloaded.message()));
            }
            if (!options_.runtime_dir.empty()) {
              const ReloadOutcome outcome{absl::StrCat(getpid(), ":", ++reloads_), reloaded.ok(),
                                          std::string(reloaded.message())};
              if (const absl::Status written = WriteReloadOutcome(options_.runtime_dir, outcome);
                  !written.ok()) {
                spdlog::error("event=reload_outcome_not_written error=\"{}\"", std::string(written.message()));
              }
            }
            signals.async_wait(on_signal);
          });
          return;
        }
        stop_signal.set_value(ec ? 0 : signal);
      };
  signals.async_wait(on_signal);
  const int signal = stop_signal.get_future().get();
  spdlog::info("event=stopping signal={}", signal);
  Shutdown();
  return 0;
}

void App::Shutdown() {
  ready_ = false;
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
  public_server_->StopAccepting();
  const absl::Time deadline = absl::Now() + config_.server.shutdown_timeout;
  while (public_server_->active_connections() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::vector<std::shared_ptr<Dispatcher>> dispatchers = dispatchers_.All();
  dispatchers.insert(dispatchers.end(), retired_.begin(), retired_.end());
  for (const std::shared_ptr<Dispatcher>& dispatcher : dispatchers) dispatcher->Stop();
  for (const std::shared_ptr<Dispatcher>& dispatcher : dispatchers) {
    while (!dispatcher->stopped() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  }
  admin_server_->StopAccepting();
  const absl::Time admin_deadline = absl::Now() + absl::Seconds(1);
  while (admin_server_->active_connections() > 0 && absl::Now() < admin_deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  io_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  pool_.Join();  // what was handed to it finishes before the store closes
  // The writer thread commits what it accepted, then RocksDB closes; leases still open are
  // simply not acknowledged and come back on the next start.
  store_->SetReadyCallback(nullptr);
  store_.reset();
  spdlog::info("event=stopped");
}

}  // namespace triage::daemon
