// JetStreamBackend's destination ownership: membership, leases, takeover and handover
// (ownership.h has the rules).
#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "storage/jetstream/jetstream_backend.h"

namespace triage::storage {

void JetStreamBackend::Log(int severity, absl::string_view line) const {
  if (options_.log) options_.log(severity, line);
}

absl::Status JetStreamBackend::StartFeed(QueueFeed& feed) {
  if (auto s = LoadCounts(); !s.ok()) return s;
  feed_ = &feed;
  absl::StatusOr<std::unique_ptr<jetstream::Following>> serving =
      client_->Serve(AskSubject(node_), [this](absl::string_view question) { return Answer(question); });
  if (!serving.ok()) return serving.status();
  serving_ = *std::move(serving);
  // The first round before the store opens, whatever it takes: a node alone (or the preferred
  // owner of a queue nobody holds) has its queues indexed when Open returns.
  Tick(/*budgeted=*/false);
  ticker_ = std::thread([this] {
    std::unique_lock lock(tick_mu_);
    while (!tick_cv_.wait_for(lock, absl::ToChronoMilliseconds(jetstream_.leases.tick()), [this] { return stopping_; })) {
      lock.unlock();
      Tick(/*budgeted=*/true);
      lock.lock();
    }
  });
  return absl::OkStatus();
}

void JetStreamBackend::StopFeed() {
  {
    std::lock_guard lock(tick_mu_);
    if (feed_ == nullptr || stopping_) return;
    stopping_ = true;
  }
  tick_cv_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  serving_.reset();
  // A clean stop: every lease is given back now, so that the next owners take the queues at
  // their next tick rather than after the TTL.
  std::lock_guard lock(own_mu_);
  for (auto it = owning_.begin(); it != owning_.end();) {
    const std::string destination = it->first;
    ++it;
    Drop(destination);
    if (auto s = client_->KvDelete(leases_bucket_, destination); !s.ok()) {
      Log(3, absl::StrCat("could not give back the lease of ", destination, ": ", s.message()));
    }
  }
  (void)client_->KvDelete(nodes_bucket_, node_);
}

std::vector<std::string> JetStreamBackend::Owned() {
  std::lock_guard lock(own_mu_);
  std::vector<std::string> out;
  for (const auto& [destination, owning] : owning_) {
    if (!owning.releasing) out.push_back(destination);
  }
  return out;
}

void JetStreamBackend::Drop(const std::string& destination) {
  const auto it = owning_.find(destination);
  if (it == owning_.end()) return;
  it->second.following.reset();  // no callback runs past this
  feed_->Lost(destination);
  owning_.erase(it);
}

void JetStreamBackend::Acquire(const std::string& destination) {
  // A lease counts from when it was asked for: the servers' TTL starts later, never earlier.
  const absl::Time asked = absl::Now();
  absl::StatusOr<uint64_t> revision = client_->KvCreate(leases_bucket_, destination, node_);
  if (!revision.ok()) {
    if (!absl::IsAlreadyExists(revision.status())) {
      Log(3, absl::StrCat("could not take the lease of ", destination, ": ", revision.status().message()));
    }
    return;  // held by another node: it hands over, or its lease runs out
  }
  TakeOver(destination, *revision, asked);
}

absl::Status JetStreamBackend::LoadRetryKeys(const std::string& destination) {
  absl::StatusOr<std::vector<std::string>> retry_keys = client_->KvKeys(retry_bucket_);
  if (!retry_keys.ok()) return retry_keys.status();
  const std::string prefix = absl::StrCat(destination, ".");
  std::lock_guard lock(mu_);
  absl::erase_if(retrying_, [&](const std::string& key) { return absl::StartsWith(key, prefix); });
  for (const std::string& key : *retry_keys) {
    if (absl::StartsWith(key, prefix)) retrying_.insert(key);
  }
  return absl::OkStatus();
}

std::optional<uint64_t> JetStreamBackend::Retake(const std::string& destination) {
  absl::StatusOr<uint64_t> revision = client_->KvCreate(leases_bucket_, destination, node_);
  if (!revision.ok()) return std::nullopt;  // another node holds it
  if (auto s = LoadRetryKeys(destination); !s.ok()) {
    Log(3, absl::StrCat("could not take the queue of ", destination, " again: ", s.message()));
    (void)client_->KvDelete(leases_bucket_, destination);
    return std::nullopt;
  }
  Log(2, absl::StrCat("the lease of ", destination, " ran out unrenewed and was free: taken again"));
  return *revision;
}

void JetStreamBackend::TakeOver(const std::string& destination, uint64_t revision, absl::Time renewed) {
  const uint64_t generation = ++generations_;
  feed_->Acquired(destination, generation);
  feed_->Renewed(destination, generation, renewed + jetstream_.leases.fence());
  auto fail = [&](const absl::Status& status) {
    Log(3, absl::StrCat("could not take over the queue of ", destination, ": ", status.message()));
    feed_->Lost(destination);
    (void)client_->KvDelete(leases_bucket_, destination);
  };
  if (auto s = LoadRetryKeys(destination); !s.ok()) return fail(s);
  uint64_t next = 0;
  absl::Status replayed = ReplayQueue(
      destination, absl::ToUnixMillis(clock_.Now()),
      [&](const QueuedEntry& queued) { feed_->Entry(generation, queued); }, &next);
  if (!replayed.ok()) return fail(replayed);
  absl::StatusOr<std::string> stream = QueueStream(destination);
  if (!stream.ok()) return fail(stream.status());
  // Then every entry stored after the replay, by any node.
  auto cursor = std::make_shared<FeedCursor>();
  cursor->next = next;
  cursor->progressed = absl::Now();
  absl::StatusOr<std::unique_ptr<jetstream::Following>> following =
      client_->Follow(*stream, next, [this, destination, generation, cursor](const jetstream::InMessage& m) {
        std::lock_guard lock(cursor->mu);
        FeedAt(*cursor, destination, generation, m.seq(), m.data());
      });
  if (!following.ok()) return fail(following.status());
  owning_[destination] = Owning{.revision = revision, .renewed = renewed, .generation = generation,
                                .following = *std::move(following), .cursor = std::move(cursor)};
  feed_->Following(destination, generation);
  Log(2, absl::StrCat("took the queue of ", destination, " (node ", node_, ")"));
}

void JetStreamBackend::FeedAt(FeedCursor& cursor, const std::string& destination, uint64_t generation, uint64_t seq,
                              absl::string_view data) {
  if (seq < cursor.next) return;  // read directly while the follower stalled
  cursor.next = seq + 1;
  cursor.progressed = absl::Now();
  std::optional<QueueEntry> entry = DecodeEntry(data);
  if (!entry) {
    Log(3, absl::StrCat("an undecodable queue record of ", destination, " at ", seq, ": skipped"));
    return;
  }
  if (auto s = ApplyRetry(destination, seq, *entry); !s.ok()) {
    Log(3, absl::StrCat("the retry record of ", destination, " ", seq, " is unreadable: ", s.message()));
  }
  feed_->Entry(generation, QueuedEntry{destination, seq, entry->team,
                                       IndexEntryOf(*entry, entry->level, absl::ToUnixMillis(clock_.Now()))});
}

// A follower silent this long while its stream holds more is read around; each tick reads this
// many entries at most that way.
constexpr absl::Duration kFollowerStall = absl::Seconds(2);
constexpr uint64_t kCatchUpBatch = 2000;

void JetStreamBackend::CatchUp(const std::string& destination, Owning& owning, absl::Time now) {
  FeedCursor& cursor = *owning.cursor;
  uint64_t from;
  {
    std::lock_guard lock(cursor.mu);
    if (now - cursor.progressed < kFollowerStall) return;
    from = cursor.next;
  }
  absl::StatusOr<std::string> stream = QueueStream(destination);
  if (!stream.ok()) return;
  absl::StatusOr<std::pair<uint64_t, uint64_t>> state = client_->StreamState(*stream);
  if (!state.ok()) return;
  const uint64_t last = state->second;
  if (last < from) {
    std::lock_guard lock(cursor.mu);
    cursor.progressed = now;  // nothing more to bring: not stalled
    return;
  }
  uint64_t read = 0;
  for (uint64_t seq = from; seq <= last && read < kCatchUpBatch; ++seq, ++read) {
    absl::StatusOr<std::optional<jetstream::InMessage>> message = client_->Get(*stream, seq);
    if (!message.ok()) break;
    if (!message->has_value()) {
      // Deleted once settled, or not shown by a leader still applying its log: only proof moves on.
      absl::StatusOr<bool> settled = Settled(destination, seq);
      if (!settled.ok() || !*settled) break;
      std::lock_guard lock(cursor.mu);
      if (cursor.next == seq) cursor.next = seq + 1;
      continue;
    }
    std::lock_guard lock(cursor.mu);
    FeedAt(cursor, destination, owning.generation, seq, (*message)->data());
  }
  if (read > 0) {
    Log(3, absl::StrCat("the follower of ", destination, " brought nothing for ", absl::FormatDuration(kFollowerStall),
                        " or more: read ", read, " entries from the stream instead"));
  }
}

void JetStreamBackend::Discovered(const std::string& destination) {
  std::lock_guard lock(own_mu_);
  if (feed_ == nullptr || owning_.contains(destination)) return;
  if (jetstream::PreferredOwner(members_, destination) == node_) Acquire(destination);
}

void JetStreamBackend::Tick(bool budgeted) {
  // The leases first: each read below may wait out its timeout while the servers elect a leader,
  // and a lease's TTL does not wait for them. For the same reason, what follows the heartbeat
  // is left to the next tick once this one has lasted two ticks (a third of the TTL: the next
  // renewal then still comes before the fence), not held back by reads that cannot be answered.
  const absl::Time start = absl::Now();
  const auto in_time = [&] { return !budgeted || absl::Now() - start < 2 * jetstream_.leases.tick(); };
  Renew();
  // The heartbeat: this node is a member while it puts its key within the TTL.
  if (auto s = client_->KvPut(nodes_bucket_, node_, absl::FormatTime(absl::Now())); !s.ok()) {
    Log(3, absl::StrCat("membership heartbeat failed: ", s.status().message()));
  }
  if (!in_time()) return;
  absl::StatusOr<std::vector<std::string>> members = client_->KvKeys(nodes_bucket_);
  const std::string queue_prefix = absl::StrCat(jetstream_.prefix, "_Q_");
  absl::StatusOr<std::vector<std::string>> streams = client_->StreamNames(queue_prefix);
  if (!in_time()) return;
  {
    std::lock_guard lock(own_mu_);
    if (members.ok()) {
      members_ = *std::move(members);
      if (std::find(members_.begin(), members_.end(), node_) == members_.end()) members_.push_back(node_);
    } else if (members_.empty()) {
      members_ = {node_};
    }
    for (auto it = owning_.begin(); it != owning_.end();) {
      const std::string destination = it->first;
      Owning& owning = it->second;
      ++it;
      if (in_time()) CatchUp(destination, owning, absl::Now());
      if (jetstream::PreferredOwner(members_, destination) != node_) owning.releasing = true;  // outranked by a newcomer
      if (owning.releasing && feed_->Release(destination)) {
        // Handed over: nothing in flight; the next owner takes it at its next tick.
        owning.following.reset();
        owning_.erase(destination);
        if (auto s = client_->KvDelete(leases_bucket_, destination); !s.ok()) {
          Log(3, absl::StrCat("could not give back the lease of ", destination, ": ", s.message()));
        }
        Log(2, absl::StrCat("handed the queue of ", destination, " over"));
      }
    }
    if (streams.ok()) {
      Listed(*streams);
      for (const std::string& stream : *streams) {
        const std::string destination = stream.substr(queue_prefix.size());
        if (!owning_.contains(destination) && jetstream::PreferredOwner(members_, destination) == node_) {
          Acquire(destination);
        }
      }
    }
  }
  // The counts as the cluster has them: what other nodes dead-lettered, labelled or
  // quarantined, which this node's own increments do not see (a failure keeps the last ones).
  if (in_time()) (void)LoadCounts();
}

void JetStreamBackend::Renew() {
  std::lock_guard lock(own_mu_);
  for (auto it = owning_.begin(); it != owning_.end();) {
    const std::string destination = it->first;
    Owning& owning = it->second;
    ++it;
    const absl::Time asked = absl::Now();
    absl::StatusOr<uint64_t> renewed = client_->KvUpdate(leases_bucket_, destination, node_, owning.revision);
    if (absl::IsFailedPrecondition(renewed.status())) {
      // Run out (its stream could not renew it within the TTL) and free: taken again, as renewed.
      if (std::optional<uint64_t> retaken = Retake(destination)) renewed = *retaken;
    }
    const absl::Time now = absl::Now();
    if (renewed.ok()) {
      // Renewed at the revision this node last wrote (no other node held the lease meanwhile), or
      // retaken: a queue fenced by a stall (a leases stream electing its leader) resumes as it was.
      if (owning.fenced) {
        Log(2, absl::StrCat("leasing the queue of ", destination, " again: its lease was renewed after ",
                            absl::FormatDuration(now - owning.renewed)));
        owning.fenced = false;
      }
      owning.revision = *renewed;
      owning.renewed = asked;
      feed_->Renewed(destination, owning.generation, asked + jetstream_.leases.fence());
      if (!owning.following->Valid()) {
        // cnats gave up following the stream: the queue is read again from its start, under the
        // same lease.
        Log(3, absl::StrCat("following the queue of ", destination, " stopped: replaying it"));
        const uint64_t revision = owning.revision;
        Drop(destination);
        TakeOver(destination, revision, asked);
        continue;
      }
    } else if (!absl::IsUnavailable(renewed.status())) {
      // Taken: another node may be delivering it already.
      Log(3, absl::StrCat("lost the lease of ", destination, ": ", renewed.status().message()));
      Drop(destination);
      continue;
    }
    if (!jetstream_.leases.Holds(owning.renewed, now) && !owning.fenced) {
      // Fenced: unrenewed for half the TTL, the store leases nothing of it (by the deadline
      // Renewed gave it, whatever this loop's pace), before another node could take it.
      Log(3, absl::StrCat("stopped leasing the queue of ", destination, ": its lease could not be renewed for ",
                          absl::FormatDuration(now - owning.renewed), "; it resumes if renewed, else another node takes it"));
      owning.fenced = true;
    }
  }
}

namespace {

// The questions and answers between nodes, one line per record, fields separated by tabs
// (destination and team names hold neither).
constexpr absl::Duration kAskWait = absl::Milliseconds(500);

std::string EncodeDepths(const std::vector<QueueDepth>& depths) {
  std::string out;
  for (const QueueDepth& d : depths) {
    if (absl::StrContains(d.destination, '\t') || absl::StrContains(d.team, '\t') ||
        absl::StrContains(d.destination, '\n') || absl::StrContains(d.team, '\n')) {
      continue;
    }
    absl::StrAppend(&out, d.destination, "\t", d.team, "\t", static_cast<int>(d.level), "\t", d.entries, "\t",
                    d.oldest_enqueued_unix_ms, "\t", d.sla_at_risk, "\t", d.sla_overdue, "\n");
  }
  return out;
}

bool DecodeDepths(absl::string_view text, std::vector<QueueDepth>& out) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::vector<absl::string_view> f = absl::StrSplit(line, '\t');
    QueueDepth d;
    int level = 0;
    if (f.size() != 7 || !absl::SimpleAtoi(f[2], &level) || (level < 0 || level >= router::kLevelCount) ||
        !absl::SimpleAtoi(f[3], &d.entries) || !absl::SimpleAtoi(f[4], &d.oldest_enqueued_unix_ms) ||
        !absl::SimpleAtoi(f[5], &d.sla_at_risk) || !absl::SimpleAtoi(f[6], &d.sla_overdue)) {
      return false;
    }
    d.destination = std::string(f[0]);
    d.team = std::string(f[1]);
    d.level = static_cast<router::Level>(level);
    out.push_back(std::move(d));
  }
  return true;
}

}  // namespace

std::string JetStreamBackend::AskSubject(absl::string_view node) const {
  return absl::StrCat(jetstream_.prefix, ".ask.", node);
}

std::string JetStreamBackend::Answer(absl::string_view question) {
  if (question == "stats") return EncodeDepths(feed_->OwnedStats(clock_.Now()));
  const std::vector<absl::string_view> f = absl::StrSplit(question, '\t');
  uint64_t seq = 0;
  int level = 0;
  if (f.size() == 4 && f[0] == "standing" && absl::SimpleAtoi(f[2], &seq) && absl::SimpleAtoi(f[3], &level) &&
      level >= 0 && level < router::kLevelCount) {
    const auto [state, position] = feed_->Standing(std::string(f[1]), seq, static_cast<router::Level>(level));
    return absl::StrCat(state, "\t", position);
  }
  return "";
}

PeerView JetStreamBackend::PeerStats() {
  PeerView view;
  // Asked: every member, and every queue's lease holder (the one whose figures count, even if
  // the member list was read without it).
  std::set<std::string> asked;
  if (absl::StatusOr<std::vector<std::string>> members = client_->KvKeys(nodes_bucket_); members.ok()) {
    asked.insert(members->begin(), members->end());
  } else {
    view.unanswered.push_back(absl::StrCat("(members unreadable: ", members.status().message(), ")"));
  }
  if (absl::StatusOr<std::vector<std::string>> leased = client_->KvKeys(leases_bucket_); leased.ok()) {
    for (const std::string& destination : *leased) {
      absl::StatusOr<std::optional<jetstream::Client::KvEntry>> holder = client_->KvGet(leases_bucket_, destination);
      if (holder.ok() && holder->has_value()) asked.insert((*holder)->value);
    }
  } else {
    view.unanswered.push_back(absl::StrCat("(queue owners unreadable: ", leased.status().message(), ")"));
  }
  asked.erase(node_);
  for (const std::string& member : asked) {
    absl::StatusOr<std::string> answer = client_->Request(AskSubject(member), "stats", kAskWait);
    if (!answer.ok() || !DecodeDepths(*answer, view.depths)) view.unanswered.push_back(member);
  }
  return view;
}

std::optional<std::pair<std::string, int64_t>> JetStreamBackend::PeerStanding(const std::string& destination,
                                                                             uint64_t seq, router::Level level) {
  absl::StatusOr<std::optional<jetstream::Client::KvEntry>> lease = client_->KvGet(leases_bucket_, destination);
  if (!lease.ok() || !lease->has_value() || (*lease)->value == node_) return std::nullopt;
  absl::StatusOr<std::string> answer = client_->Request(
      AskSubject((*lease)->value), absl::StrCat("standing\t", destination, "\t", seq, "\t", static_cast<int>(level)),
      kAskWait);
  if (!answer.ok()) return std::nullopt;
  const std::vector<absl::string_view> f = absl::StrSplit(*answer, '\t');
  int64_t position = 0;
  if (f.size() != 2 || f[0].empty() || !absl::SimpleAtoi(f[1], &position)) return std::nullopt;
  return std::make_pair(std::string(f[0]), position);
}

}  // namespace triage::storage
