#include "tests/support/backends.h"

#include <cstdlib>
#include <filesystem>

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

absl::StatusOr<std::unique_ptr<storage::Backend>> OpenBackend(const std::string& kind,
                                                             const storage::StoreOptions& options) {
  if (kind == "rocksdb") return storage::RocksDbBackend::Open(options);
  if (kind != "jetstream") return absl::InvalidArgumentError("unknown backend " + kind);
  NatsCluster* cluster = SharedCluster();
  if (cluster == nullptr) return absl::UnavailableError("no NATS cluster (is nats-server installed?)");
  storage::JetStreamOptions jetstream;
  jetstream.connect.servers = cluster->urls();
  std::string name = std::filesystem::path(options.path).filename().string();
  std::erase_if(name, [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); });
  jetstream.prefix = "T" + name;
  return storage::JetStreamBackend::Open(jetstream, options);
}

}  // namespace triage::testing
