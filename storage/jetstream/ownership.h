#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace triage::storage::jetstream {

// Destination ownership across the nodes of one cluster: which node should own a destination's
// queue, and when a lease must be given up. Pure: no I/O, times passed in.
//
// Every live node (a key in the members bucket, put at every tick, gone `ttl` after its last
// put) ranks every destination; the highest rank owns it (rendezvous hashing). When a node
// leaves, only its destinations move; when one joins, only those it outranks move, each by a
// clean handover. The lease (a key in the leases bucket, created by the owner, renewed by
// revision at every tick, gone `ttl` after the last renewal) is what makes ownership exclusive.

// A rank stable across processes and machines (FNV-1a, then mixed): every node computes the same.
uint64_t OwnershipRank(absl::string_view node, absl::string_view destination);

// The member that should own `destination`; empty when there are none.
std::string PreferredOwner(absl::Span<const std::string> members, absl::string_view destination);

struct LeaseTiming {
  absl::Duration ttl = absl::Seconds(6);  // of a lease and of a membership, from the last put
  // How often a node renews, and looks at members and queues.
  absl::Duration tick() const { return ttl / 6; }
  // Unrenewed for this long, a lease is given up by its holder (fencing): at half the TTL it
  // stops delivering, well before another node can take the lease.
  absl::Duration fence() const { return ttl / 2; }
  // Whether a lease last renewed at `renewed` still lets its holder deliver at `now`.
  bool Holds(absl::Time renewed, absl::Time now) const { return now - renewed < fence(); }
};

}  // namespace triage::storage::jetstream
