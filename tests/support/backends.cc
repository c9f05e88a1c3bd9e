#include "tests/support/backends.h"

#include <cstdlib>
#include <functional>

#include "absl/strings/str_cat.h"
#include "storage/jetstream/jetstream_backend.h"
#include "storage/rocksdb/rocksdb_backend.h"

namespace triage::testing {

std::string BackendUnderTest() {
  const char* kind = std::getenv("TRIAGE_TEST_BACKEND");
  return kind != nullptr && *kind != '\0' ? kind : "rocksdb";
}

NatsCluster* SharedCluster() {
  static const std::unique_ptr<NatsCluster> cluster = []() -> std::unique_ptr<NatsCluster> {
    if (NatsCluster::Binary().empty()) return nullptr;
    auto started = std::make_unique<NatsCluster>(3);
    if (!started->Start()) {
      std::fprintf(stderr, "NATS cluster: %s\n", started->error().c_str());
      return nullptr;
    }
    return started;
  }();
  return cluster.get();
}

absl::StatusOr<storage::JetStreamOptions> JetStreamAt(const std::string& folder) {
  NatsCluster* cluster = SharedCluster();
  if (cluster == nullptr) return absl::UnavailableError("no NATS cluster (is nats-server installed?)");
  storage::JetStreamOptions jetstream;
  jetstream.connect.servers = cluster->urls();
  // Same folder, same prefix (within this test process: the hash need not be stable across
  // processes).
  jetstream.prefix = absl::StrCat("T", absl::Hex(std::hash<std::string>{}(folder)));
  return jetstream;
}

absl::StatusOr<std::unique_ptr<storage::Backend>> OpenBackend(const std::string& kind,
                                                             const storage::StoreOptions& options) {
  if (kind == "rocksdb") return storage::RocksDbBackend::Open(options);
  if (kind != "jetstream") return absl::InvalidArgumentError("unknown backend " + kind);
  absl::StatusOr<storage::JetStreamOptions> jetstream = JetStreamAt(options.path);
  if (!jetstream.ok()) return jetstream.status();
  return storage::JetStreamBackend::Open(*jetstream, options);
}

}  // namespace triage::testing
