#include "storage/jetstream/ownership.h"

namespace triage::storage::jetstream {

uint64_t OwnershipRank(absl::string_view node, absl::string_view destination) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  auto mix_in = [&h](absl::string_view bytes) {
    for (const char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  };
  mix_in(node);
  mix_in(absl::string_view("\0", 1));  // "ab"+"c" and "a"+"bc" rank apart
  mix_in(destination);
  // A final mix (splitmix64's), so that names that differ in their last byte rank far apart.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

std::string PreferredOwner(absl::Span<const std::string> members, absl::string_view destination) {
  const std::string* best = nullptr;
  uint64_t best_rank = 0;
  for (const std::string& member : members) {
    const uint64_t rank = OwnershipRank(member, destination);
    // Ties (never in practice) go to the smaller name, so that every node agrees.
    if (best == nullptr || rank > best_rank || (rank == best_rank && member < *best)) {
      best = &member;
      best_rank = rank;
    }
  }
  return best == nullptr ? std::string() : *best;
}

}  // namespace triage::storage::jetstream
