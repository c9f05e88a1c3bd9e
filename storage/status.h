#pragma once

#include "absl/status/status.h"
#include "rocksdb/status.h"

namespace triage::storage {

// The one place where rocksdb::Status becomes absl::Status. Codes: IO errors, corruption and
// shutdown become Unavailable (the caller answers 503 and the network retries); busy/timed-out
// become ResourceExhausted; NotFound stays NotFound; anything else is Internal.
absl::Status ToAbsl(const rocksdb::Status& status);

}  // namespace triage::storage
