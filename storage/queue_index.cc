#include "storage/queue_index.h"

#include <algorithm>
#include <limits>

#include "absl/hash/hash.h"

namespace triage::storage {
namespace {

// The SLA histograms count deadlines in steps of this many milliseconds.
constexpr int64_t kSlaStepMs = 10'000;

}  // namespace

uint64_t ChainOf(bool owner, absl::string_view team, absl::string_view thread, absl::string_view message_key) {
  if (thread == message_key) return 0;
  const uint64_t hash = absl::HashOf(owner ? absl::string_view() : team, thread);
  return hash == 0 ? 1 : hash;
}

int64_t IndexEntry::sla_risk_unix_ms() const {
  const auto budget = static_cast<double>(sla_deadline_unix_ms - enqueued_unix_ms);
  return sla_deadline_unix_ms - static_cast<int64_t>(budget * kSlaRiskShare);
}

uint32_t QueueIndex::TeamId(absl::string_view team) {
  const auto it = std::find(teams_.begin(), teams_.end(), team);
  if (it != teams_.end()) return static_cast<uint32_t>(it - teams_.begin());
  teams_.emplace_back(team.data(), team.size());
  return static_cast<uint32_t>(teams_.size() - 1);
}

void QueueIndex::CountDepth(const std::string& destination, const IndexEntry& entry, int64_t delta) {
  Depth& depth = depths_[{destination, entry.team, entry.level}];
  depth.entries += delta;
  if (entry.sla_deadline_unix_ms == 0) return;
  auto count = [delta](std::map<int64_t, int64_t>& steps, int64_t at) {
    const int64_t step_end = (at / kSlaStepMs + 1) * kSlaStepMs;
    int64_t& n = steps[step_end];
    n += delta;
    if (n == 0) steps.erase(step_end);
  };
  count(depth.at_risk_from, entry.sla_risk_unix_ms());
  count(depth.overdue_from, entry.sla_deadline_unix_ms);
}

void QueueIndex::Place(DestQueue& q, uint64_t seq, IndexEntry entry) {
  if (entry.due_unix_ms != 0) {
    q.delayed.insert({entry.due_unix_ms, seq});
    q.waiting[seq] = entry;
  } else {
    q.ready[static_cast<int>(entry.level)][seq] = entry;
  }
}

void QueueIndex::Add(const std::string& destination, uint64_t seq, IndexEntry entry) {
  DestQueue& q = queues_[destination];
  CountDepth(destination, entry, 1);
  ++size_;
  if (entry.chain != 0 && ++q.chains[entry.chain] > 1) {
    q.blocked_order.insert({entry.chain, seq});
    q.blocked[seq] = entry;
  } else {
    Place(q, seq, entry);
  }
}

std::optional<QueueIndex::Leased> QueueIndex::Lease(const std::string& destination, int64_t now_ms,
                                                    bool probe) {
  const auto found = queues_.find(destination);
  if (found == queues_.end()) return std::nullopt;
  DestQueue& q = found->second;
  while (!q.delayed.empty() && q.delayed.begin()->first <= now_ms) {
    const uint64_t seq = q.delayed.begin()->second;
    q.delayed.erase(q.delayed.begin());
    const auto waiting = q.waiting.find(seq);
    IndexEntry entry = waiting->second;
    q.waiting.erase(waiting);
    entry.due_unix_ms = 0;
    q.ready[static_cast<int>(entry.level)][seq] = entry;
  }
  // The head of each level is its oldest entry. Its effective level rises one step per
  // aging_step waited; the best effective level wins, then the oldest.
  const int64_t step_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(aging_step_));
  int best = -1;
  int64_t best_rank = 0;
  for (int level = 0; level < router::kLevelCount; ++level) {
    if (q.ready[level].empty()) continue;
    const auto& [head_seq, head] = *q.ready[level].begin();
    const int64_t waited_steps = std::max<int64_t>(0, now_ms - head.enqueued_unix_ms) / step_ms;
    const int64_t rank = std::max<int64_t>(0, level - waited_steps);
    if (best < 0 || rank < best_rank || (rank == best_rank && head_seq < q.ready[best].begin()->first)) {
      best = level;
      best_rank = rank;
    }
  }
  Leased out;
  if (best >= 0) {
    auto head = q.ready[best].begin();
    out.seq = head->first;
    out.entry = head->second;
    q.ready[best].erase(head);
  } else if (probe && !q.delayed.empty()) {
    out.seq = q.delayed.begin()->second;
    q.delayed.erase(q.delayed.begin());
    const auto waiting = q.waiting.find(out.seq);
    out.entry = waiting->second;  // keeps its due time, for Return
    q.waiting.erase(waiting);
    out.early = true;
  } else {
    return std::nullopt;
  }
  q.leased[out.seq] = out.entry;
  return out;
}

absl::Time QueueIndex::NextDue(const std::string& destination) const {
  const auto found = queues_.find(destination);
  if (found == queues_.end()) return absl::InfiniteFuture();
  const DestQueue& q = found->second;
  for (const auto& level : q.ready) {
    if (!level.empty()) return absl::InfinitePast();
  }
  if (q.delayed.empty()) return absl::InfiniteFuture();
  return absl::FromUnixMillis(q.delayed.begin()->first);
}

absl::StatusOr<IndexEntry> QueueIndex::TakeLeased(const std::string& destination, uint64_t seq) {
  const auto found = queues_.find(destination);
  if (found == queues_.end()) return absl::NotFoundError("no such destination");
  const auto leased = found->second.leased.find(seq);
  if (leased == found->second.leased.end()) return absl::NotFoundError("no such lease");
  const IndexEntry entry = leased->second;
  found->second.leased.erase(leased);
  return entry;
}

absl::Status QueueIndex::Return(const std::string& destination, uint64_t seq) {
  absl::StatusOr<IndexEntry> entry = TakeLeased(destination, seq);
  if (!entry.ok()) return entry.status();
  Place(queues_[destination], seq, *entry);
  return absl::OkStatus();
}

absl::Status QueueIndex::Delay(const std::string& destination, uint64_t seq, int64_t due_unix_ms) {
  absl::StatusOr<IndexEntry> entry = TakeLeased(destination, seq);
  if (!entry.ok()) return entry.status();
  entry->due_unix_ms = std::max<int64_t>(1, due_unix_ms);
  Place(queues_[destination], seq, *entry);
  return absl::OkStatus();
}

int64_t QueueIndex::Drop(const std::string& destination) {
  const auto it = queues_.find(destination);
  if (it == queues_.end()) return 0;
  int64_t dropped = 0;
  auto uncount = [&](const IndexEntry& entry) {
    CountDepth(destination, entry, -1);
    ++dropped;
  };
  const DestQueue& q = it->second;
  for (const auto& level : q.ready) {
    for (const auto& [seq, entry] : level) uncount(entry);
  }
  for (const auto* aside : {&q.waiting, &q.leased, &q.blocked}) {
    for (const auto& [seq, entry] : *aside) uncount(entry);
  }
  queues_.erase(it);
  size_ -= dropped;
  return dropped;
}

size_t QueueIndex::LeasedCount(const std::string& destination) const {
  const auto it = queues_.find(destination);
  return it == queues_.end() ? 0 : it->second.leased.size();
}

absl::Status QueueIndex::Remove(const std::string& destination, uint64_t seq) {
  absl::StatusOr<IndexEntry> entry = TakeLeased(destination, seq);
  if (!entry.ok()) return entry.status();
  CountDepth(destination, *entry, -1);
  --size_;
  if (entry->chain == 0) return absl::OkStatus();
  DestQueue& q = queues_[destination];
  const auto chain = q.chains.find(entry->chain);
  if (chain == q.chains.end()) return absl::OkStatus();
  if (--chain->second == 0) {
    q.chains.erase(chain);
    return absl::OkStatus();
  }
  // Only a chain's head is leased, so the next of the chain in arrival order is the new head.
  const auto next = q.blocked_order.lower_bound({entry->chain, 0});
  if (next == q.blocked_order.end() || next->first != entry->chain) return absl::OkStatus();
  const uint64_t next_seq = next->second;
  q.blocked_order.erase(next);
  const auto blocked = q.blocked.find(next_seq);
  if (blocked == q.blocked.end()) return absl::OkStatus();
  const IndexEntry unblocked = blocked->second;
  q.blocked.erase(blocked);
  Place(q, next_seq, unblocked);
  return absl::OkStatus();
}

std::vector<QueueDepth> QueueIndex::Depths(int64_t now_ms) const {
  auto reached = [now_ms](const std::map<int64_t, int64_t>& steps) {
    int64_t n = 0;
    for (auto it = steps.begin(); it != steps.end() && it->first <= now_ms; ++it) n += it->second;
    return n;
  };
  std::vector<QueueDepth> out;
  out.reserve(depths_.size());
  for (const auto& [key, depth] : depths_) {
    const auto& [destination, team, level] = key;
    QueueDepth& d = out.emplace_back(QueueDepth{destination, teams_[team], level, depth.entries});
    d.sla_overdue = reached(depth.overdue_from);
    d.sla_at_risk = reached(depth.at_risk_from) - d.sla_overdue;
  }
  return out;
}

std::vector<QueueDepth> QueueIndex::OldestEntries() const {
  std::vector<QueueDepth> out;
  for (const auto& [destination, q] : queues_) {
    std::array<int64_t, router::kLevelCount> oldest;
    oldest.fill(std::numeric_limits<int64_t>::max());
    auto see = [&](const IndexEntry& entry) {
      int64_t& o = oldest[static_cast<int>(entry.level)];
      o = std::min(o, entry.enqueued_unix_ms);
    };
    for (const auto& level : q.ready) {
      if (!level.empty()) see(level.begin()->second);  // seq order is arrival order
    }
    for (const auto* set : {&q.waiting, &q.leased, &q.blocked}) {
      for (const auto& [seq, entry] : *set) see(entry);
    }
    for (int level = 0; level < router::kLevelCount; ++level) {
      if (oldest[level] == std::numeric_limits<int64_t>::max()) continue;
      QueueDepth d{destination, "", static_cast<router::Level>(level), 0};
      d.oldest_enqueued_unix_ms = oldest[level];
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::vector<QueueDepth> QueueIndex::QueueStats(int64_t now_ms) const {
  std::map<std::tuple<std::string, uint32_t, router::Level>, QueueDepth> stats;
  auto count = [&](const std::string& destination, const IndexEntry& entry) {
    QueueDepth& d = stats[{destination, entry.team, entry.level}];
    if (d.entries == 0 || entry.enqueued_unix_ms < d.oldest_enqueued_unix_ms) {
      d.oldest_enqueued_unix_ms = entry.enqueued_unix_ms;
    }
    ++d.entries;
    if (entry.sla_deadline_unix_ms == 0) return;
    if (entry.sla_deadline_unix_ms <= now_ms) {
      ++d.sla_overdue;
    } else if (entry.sla_risk_unix_ms() <= now_ms) {
      ++d.sla_at_risk;
    }
  };
  for (const auto& [destination, q] : queues_) {
    for (const auto& level : q.ready) {
      for (const auto& [seq, entry] : level) count(destination, entry);
    }
    for (const auto* set : {&q.waiting, &q.leased, &q.blocked}) {
      for (const auto& [seq, entry] : *set) count(destination, entry);
    }
  }
  std::vector<QueueDepth> out;
  for (auto& [key, d] : stats) {
    const auto& [destination, team, level] = key;
    d.destination = destination;
    d.team = teams_[team];
    d.level = level;
    out.push_back(std::move(d));
  }
  return out;
}

std::pair<std::string, int64_t> QueueIndex::Standing(const std::string& destination, uint64_t seq,
                                                     router::Level level) const {
  const auto found = queues_.find(destination);
  if (found == queues_.end()) return {"unknown", -1};
  const DestQueue& q = found->second;
  if (q.leased.contains(seq)) return {"in_flight", -1};
  if (q.waiting.contains(seq)) return {"retrying", -1};
  if (q.blocked.contains(seq)) return {"waiting_for_thread", -1};
  int64_t ahead = 0;
  for (int better = 0; better < static_cast<int>(level); ++better) {
    ahead += static_cast<int64_t>(q.ready[better].size());
  }
  const auto& same = q.ready[static_cast<int>(level)];
  ahead += std::distance(same.begin(), same.lower_bound(seq));
  return {"queued", ahead + 1};
}

}  // namespace triage::storage
