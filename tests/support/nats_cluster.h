#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace triage::testing {

// A NATS JetStream cluster of Debian's nats-server on loopback, for tests: each node on free
// ports, in a temporary folder of its own; only its own pids are ever signalled, and the folders
// go with the object.
class NatsCluster {
 public:
  // The nats-server binary: $TRIAGE_NATS_SERVER, else /usr/sbin/nats-server; empty when absent.
  static std::string Binary();
  // Whether a missing binary fails the test rather than skipping it ($TRIAGE_REQUIRE_NATS, set
  // by CI).
  static bool Required();

  explicit NatsCluster(int nodes = 3);
  ~NatsCluster();
  NatsCluster(const NatsCluster&) = delete;
  NatsCluster& operator=(const NatsCluster&) = delete;

  // Starts every node and waits (30 s at most) until JetStream takes a replicated stream; up to
  // three attempts, each on new ports. false with error() when none succeeds (each failed
  // attempt prints the ends of the servers' logs on stderr).
  bool Start();
  const std::string& error() const { return error_; }

  int nodes() const { return static_cast<int>(nodes_.size()); }
  // Client URLs (nats://127.0.0.1:port), one per node.
  std::vector<std::string> urls() const;

  void Kill(int node);  // SIGKILL, and waits for the process to be gone
  void Stop(int node);  // SIGTERM (lame duck, then exit), bounded wait, then SIGKILL
  // SIGSTOP and SIGCONT: a stall (a host frozen, a long GC pause) without a restart.
  void Pause(int node);
  void Resume(int node);
  // Starts a stopped node again on its ports and folder; waits until it answers /healthz.
  bool Restart(int node);
  // The same for several stopped nodes at once (all of them, after a whole-cluster stop).
  bool Restart(const std::vector<int>& nodes);

 private:
  struct Node {
    int client_port = 0;
    int cluster_port = 0;
    int http_port = 0;
    std::string dir;
    pid_t pid = -1;
  };
  void ChoosePorts();
  bool StartOnce();
  bool Spawn(int node);
  bool Healthy(int node) const;
  void Reap(int node, int signal, int wait_ms);

  std::string root_;
  std::vector<Node> nodes_;
  std::string error_;
};

}  // namespace triage::testing
