#include "tests/support/nats_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "absl/strings/str_cat.h"
#include "storage/jetstream/nats.h"

namespace triage::testing {
namespace {

// Ports nobody listens on now, all different: each is bound and held until all are chosen, then
// closed. Another process can still take one before the server binds it; Start() then begins again
// on new ports.
std::vector<int> FreePorts(size_t count) {
  std::vector<int> fds;
  std::vector<int> ports;
  for (size_t i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    fds.push_back(fd);
    ports.push_back(port);
  }
  for (const int fd : fds) ::close(fd);
  return ports;
}

// The last `bytes` of a file, for an error message.
std::string Tail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

// GET `path` on 127.0.0.1:`port`; true on a 200.
bool HttpOk(int port, const char* path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval timeout{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[64] = {};
      const ssize_t n = ::read(fd, buffer, sizeof(buffer) - 1);
      ok = n > 12 && std::string(buffer, static_cast<size_t>(n)).find(" 200 ") != std::string::npos;
    }
  }
  ::close(fd);
  return ok;
}

}  // namespace

std::string NatsCluster::Binary() {
  const char* configured = std::getenv("TRIAGE_NATS_SERVER");
  const std::string binary = configured != nullptr ? configured : "/usr/sbin/nats-server";
  return ::access(binary.c_str(), X_OK) == 0 ? binary : "";
}

bool NatsCluster::Required() { return std::getenv("TRIAGE_REQUIRE_NATS") != nullptr; }

NatsCluster::NatsCluster(int nodes) : nodes_(static_cast<size_t>(nodes)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "triaged-nats-XXXXXX").string();
  root_ = ::mkdtemp(pattern.data());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].dir = absl::StrCat(root_, "/n", i);
    std::filesystem::create_directories(nodes_[i].dir);
  }
  ChoosePorts();
}

void NatsCluster::ChoosePorts() {
  const std::vector<int> ports = FreePorts(3 * nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) {
    nodes_[i].client_port = ports[3 * i];
    nodes_[i].cluster_port = ports[3 * i + 1];
    nodes_[i].http_port = ports[3 * i + 2];
  }
}

NatsCluster::~NatsCluster() {
  for (int i = 0; i < nodes(); ++i) Reap(i, SIGKILL, 5000);
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::vector<std::string> NatsCluster::urls() const {
  std::vector<std::string> out;
  for (const Node& node : nodes_) out.push_back(absl::StrCat("nats://127.0.0.1:", node.client_port));
  return out;
}

bool NatsCluster::Spawn(int i) {
  Node& node = nodes_[static_cast<size_t>(i)];
  const std::string config = absl::StrCat(node.dir, ".conf");
  {
    std::ofstream out(config);
    out << "server_name: n" << i << "\n"
        << "listen: 127.0.0.1:" << node.client_port << "\n"
        << "http: 127.0.0.1:" << node.http_port << "\n"
        << "jetstream { store_dir: \"" << node.dir << "\", max_memory_store: 256MiB, max_file_store: 4GiB }\n";
    if (nodes() > 1) {
      out << "cluster { name: triage-test, listen: 127.0.0.1:" << node.cluster_port << ", routes: [";
      for (size_t j = 0; j < nodes_.size(); ++j) {
        out << (j == 0 ? " " : ", ") << "nats-route://127.0.0.1:" << nodes_[j].cluster_port;
      }
      out << " ] }\n";
    }
  }
  const std::string binary = Binary();
  const std::string log = absl::StrCat(node.dir, ".log");
  const pid_t pid = ::fork();
  if (pid < 0) {
    error_ = absl::StrCat("cannot fork: ", std::strerror(errno));
    return false;
  }
  if (pid == 0) {
    // The server dies with the test process, however that ends (a crash, a timeout's kill).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execl(binary.c_str(), binary.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  node.pid = pid;
  return true;
}

bool NatsCluster::Healthy(int i) const { return HttpOk(nodes_[static_cast<size_t>(i)].http_port, "/healthz"); }

bool NatsCluster::Start() {
  if (Binary().empty()) {
    error_ = "nats-server is not installed (apt-get install nats-server)";
    return false;
  }
  // A port taken by another process between its choice and the server's bind keeps that node
  // (or the whole cluster) from forming: begin again on new ports, in new folders.
  constexpr int kAttempts = 3;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    if (StartOnce()) return true;
    std::string logs;
    for (int i = 0; i < nodes(); ++i) {
      absl::StrAppend(&logs, "\n--- n", i, ".log (end) ---\n", Tail(absl::StrCat(nodes_[static_cast<size_t>(i)].dir, ".log"), 1500));
    }
    std::fprintf(stderr, "NATS cluster, attempt %d of %d: %s%s\n", attempt, kAttempts, error_.c_str(), logs.c_str());
    for (int i = 0; i < nodes(); ++i) {
      Reap(i, SIGKILL, 5000);
      std::error_code ignored;
      std::filesystem::remove_all(nodes_[static_cast<size_t>(i)].dir, ignored);
      std::filesystem::remove(absl::StrCat(nodes_[static_cast<size_t>(i)].dir, ".log"), ignored);
      std::filesystem::create_directories(nodes_[static_cast<size_t>(i)].dir);
    }
    ChoosePorts();
  }
  return false;
}

bool NatsCluster::StartOnce() {
  for (int i = 0; i < nodes(); ++i) {
    if (!Spawn(i)) return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < nodes(); ++i) {
    while (!Healthy(i)) {
      if (std::chrono::steady_clock::now() > deadline) {
        error_ = absl::StrCat("node ", i, " not healthy within 30 s");
        return false;
      }
      for (int j = 0; j < nodes(); ++j) {
        Node& node = nodes_[static_cast<size_t>(j)];
        if (::waitpid(node.pid, nullptr, WNOHANG) == node.pid) {
          node.pid = -1;
          error_ = absl::StrCat("node ", j, " exited at start");
          return false;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Healthy servers may still be electing the JetStream meta leader: ready once a replicated
  // stream can be made.
  storage::jetstream::ConnectOptions options;
  options.servers = urls();
  options.timeout = absl::Seconds(2);
  absl::Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<std::unique_ptr<storage::jetstream::Client>> client = storage::jetstream::Client::Connect(options);
    if (client.ok()) {
      storage::jetstream::StreamSpec probe;
      probe.name = "TRIAGE_TEST_READY";
      probe.subjects = {"triage-test.ready"};
      probe.replicas = nodes();
      last = (*client)->EnsureStream(probe);
      if (last.ok()) return (*client)->DeleteStream(probe.name).ok();
    } else {
      last = client.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  error_ = absl::StrCat("JetStream not ready within 30 s: ", last.message());
  return false;
}

void NatsCluster::Reap(int i, int signal, int wait_ms) {
  Node& node = nodes_[static_cast<size_t>(i)];
  if (node.pid <= 0) return;
  ::kill(node.pid, signal);
  for (int waited = 0; waited < wait_ms; waited += 50) {
    if (::waitpid(node.pid, nullptr, WNOHANG) == node.pid) {
      node.pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(node.pid, SIGKILL);
  ::waitpid(node.pid, nullptr, 0);
  node.pid = -1;
}

void NatsCluster::Kill(int i) { Reap(i, SIGKILL, 5000); }

void NatsCluster::Stop(int i) { Reap(i, SIGTERM, 10000); }

void NatsCluster::Pause(int i) {
  if (nodes_[i].pid > 0) kill(nodes_[i].pid, SIGSTOP);
}

void NatsCluster::Resume(int i) {
  if (nodes_[i].pid > 0) kill(nodes_[i].pid, SIGCONT);
}

bool NatsCluster::Restart(int i) { return Restart(std::vector<int>{i}); }

bool NatsCluster::Restart(const std::vector<int>& which) {
  for (const int i : which) {
    if (!Spawn(i)) return false;
  }
  // Together: a node alone is not healthy until it reaches a JetStream meta leader, which takes
  // a quorum of them.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (const int i : which) {
    while (!Healthy(i)) {
      if (std::chrono::steady_clock::now() > deadline) {
        error_ = absl::StrCat("node ", i, " not healthy within 30 s after a restart");
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return true;
}

}  // namespace triage::testing
