#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "storage/backend.h"
#include "storage/jetstream/jetstream_backend.h"
#include "storage/store_options.h"
#include "tests/support/nats_cluster.h"

namespace triage::testing {

// Which backend the store tests run on: $TRIAGE_TEST_BACKEND, "rocksdb" (the default) or
// "jetstream" (CTest runs storage_test once with each).
std::string BackendUnderTest();

// One 3-node cluster for the process, started on first use; null when nats-server is missing.
// Stopped at exit (and its servers die with the process however it ends).
NatsCluster* SharedCluster();

// The shared cluster, under a stream prefix of `folder`'s own: another open at the same folder
// (in this process) finds the same records. Unavailable without a cluster.
absl::StatusOr<storage::JetStreamOptions> JetStreamAt(const std::string& folder);

// The backend `kind` keeping its records "at" options.path: the RocksDB folder, or for
// jetstream a stream prefix made from the folder's name on the shared cluster, so that a second
// open of the same folder sees what the first stored.
absl::StatusOr<std::unique_ptr<storage::Backend>> OpenBackend(const std::string& kind,
                                                             const storage::StoreOptions& options);

}  // namespace triage::testing
