#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

// cnats's types, kept out of every header but this one.
typedef struct __natsConnection natsConnection;
typedef struct __natsMsg natsMsg;
typedef struct __jsCtx jsCtx;
typedef struct __kvStore kvStore;

namespace triage::storage::jetstream {

struct AckSlots;     // nats.cc
struct FollowState;  // nats.cc
struct BucketCache;  // nats.cc

struct ConnectOptions {
  std::vector<std::string> servers;  // nats://host:port (tls:// for TLS)
  std::string name = "triaged";      // how the servers list this client
  std::string credentials_file;      // a .creds file (JWT + NKey); empty: none
  std::string ca_file;               // roots for the servers' TLS certificates; empty: none
  // Each call's wait for the servers: a publish's acknowledgement, a get, a KV update. An
  // election stalls them 4-9 s (2.9.10), so a caller answers 503 at this point rather than hang.
  absl::Duration timeout = absl::Seconds(3);
};

// A stream as the backend needs them (file storage, always).
struct StreamSpec {
  std::string name;
  std::vector<std::string> subjects;
  int replicas = 3;
  int64_t max_msgs = -1;              // -1: no limit
  int64_t max_msgs_per_subject = -1;  // -1: no limit
  absl::Duration max_age;             // zero: kept forever
  absl::Duration duplicates;          // the Nats-Msg-Id window; zero: the server's default
  bool discard_new = false;           // refuse new messages at a limit (not drop old ones)
  bool discard_new_per_subject = false;
  bool allow_direct = false;          // DirectGet answered by any replica
};

struct OutMessage {
  std::string subject;
  std::string data;
  std::string msg_id;  // Nats-Msg-Id: a second publish within the window is a duplicate; empty: none
  std::vector<std::pair<std::string, std::string>> headers;
  // Stored only if the subject's last message is this seq (0: it has none); otherwise
  // FailedPrecondition. Unset: no condition.
  std::optional<uint64_t> expect_last_subject_seq;
};

enum class From { kLeader, kAnyReplica };

struct PubAck {
  uint64_t seq = 0;
  bool duplicate = false;  // dropped by Nats-Msg-Id: `seq` is the first one's
};

// A stored message read back (owns its cnats message).
class InMessage {
 public:
  explicit InMessage(natsMsg* msg);
  InMessage(InMessage&& other) noexcept;
  InMessage& operator=(InMessage&& other) noexcept;
  ~InMessage();

  absl::string_view subject() const { return subject_; }
  uint64_t seq() const { return seq_; }
  absl::string_view data() const;
  // A header's value; empty when it has none.
  absl::string_view Header(const char* key) const;

 private:
  natsMsg* msg_;
  std::string subject_;
  uint64_t seq_ = 0;
};

// A subscription (a stream followed by Client::Follow, a subject served by Client::Serve): stops
// on destruction, once no callback runs any more.
class Following {
 public:
  explicit Following(std::unique_ptr<FollowState> state);
  ~Following();
  Following(const Following&) = delete;
  Following& operator=(const Following&) = delete;

  // False once cnats gave up on the consumer (it could not start it again): nothing more comes.
  bool Valid() const;

 private:
  std::unique_ptr<FollowState> state_;
};

// One connection to a NATS cluster and its JetStream context: a thin layer over cnats that
// speaks absl::Status. Errors: Unavailable for the cluster not answering (timeouts, no
// responders, a closed connection: try again), NotFound for a missing message, stream or key,
// AlreadyExists for a refused create (a KV key, a subject already holding its one message),
// FailedPrecondition for a stale revision, Internal for anything else the server refuses.
//
// Thread-safety: every method may be called from any thread; PublishAll from one at a time.
// cnats reconnects on its own (to any server of the list, without end); calls fail
// Unavailable meanwhile.
class Client {
 public:
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ConnectOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Creates the stream, or updates its config to `spec`. Waits as long as a new raft group may
  // take to be elected on a busy cluster (15 s at least), or `quick`: the publish timeout (a
  // caller that answers a webhook meanwhile).
  absl::Status EnsureStream(const StreamSpec& spec, bool quick = false);
  absl::Status DeleteStream(const std::string& name);
  // How many messages it holds, and the last seq (0 when empty).
  absl::StatusOr<std::pair<uint64_t, uint64_t>> StreamState(const std::string& name);
  // The name of the server that leads the stream now (empty on a single server).
  absl::StatusOr<std::string> StreamLeader(const std::string& name);

  absl::StatusOr<PubAck> Publish(const OutMessage& message);
  // Publishes every message without waiting between them, then waits (up to the timeout in
  // all) for every acknowledgement: one result each, in order. Both send a message again that
  // no server took ("no responders": a stream just created, or electing its leader) while the
  // timeout allows.
  std::vector<absl::StatusOr<PubAck>> PublishAll(absl::Span<const OutMessage> messages);

  // The last message of `subject`: from the stream's leader (what was acknowledged), or from
  // any replica (DirectGet, on a stream that allows it: cheaper, but possibly a moment stale).
  absl::StatusOr<std::optional<InMessage>> GetLast(const std::string& stream, const std::string& subject, From from);
  // The message at `seq`, from the stream's leader.
  absl::StatusOr<std::optional<InMessage>> Get(const std::string& stream, uint64_t seq);
  // NotFound when it is not there (deleted before, or never).
  absl::Status Delete(const std::string& stream, uint64_t seq);
  // The messages of `stream` on `filter` (empty: all) from `start_seq` (0: the first) that it
  // holds when the call starts, in seq order (an ordered consumer), until `each` answers false.
  // On a filter from the first, as many as the stream's leader counts (a matching message
  // deleted meanwhile ends the read after the timeout).
  absl::Status Read(const std::string& stream, const std::string& filter, uint64_t start_seq,
                    absl::FunctionRef<bool(const InMessage&)> each);
  // Every message of `stream` from `start_seq` on, the ones stored later too, in seq order (an
  // ordered push consumer, started again by cnats after a gap or a lost server), to `each` on
  // a cnats thread, until the Following returned is destroyed.
  using Each = std::function<void(const InMessage&)>;
  absl::StatusOr<std::unique_ptr<Following>> Follow(const std::string& stream, uint64_t start_seq, Each each);
  // The names of the streams that start with `prefix`.
  absl::StatusOr<std::vector<std::string>> StreamNames(absl::string_view prefix);

  // Plain NATS request/reply (no stream): `answer` replies to each request on `subject`, on a
  // cnats thread, until the Following returned is destroyed.
  using Answer = std::function<std::string(absl::string_view request)>;
  absl::StatusOr<std::unique_ptr<Following>> Serve(const std::string& subject, Answer answer);
  // The answer to `request` on `subject` within `timeout`; Unavailable when nobody serves it
  // (no responders) or nobody answered in time.
  absl::StatusOr<std::string> Request(const std::string& subject, absl::string_view request, absl::Duration timeout);

  // Key-value buckets (streams underneath): `ttl` counts from a key's last put; zero: none.
  // A bucket's stream, and a key's subject in it (the layout cnats and the servers use): a put
  // may be published with the other writes of a batch (PublishAll).
  static std::string KvStream(absl::string_view bucket);
  static std::string KvSubject(absl::string_view bucket, absl::string_view key);
  absl::Status EnsureBucket(const std::string& bucket, int replicas, absl::Duration ttl);
  struct KvEntry {
    std::string value;
    uint64_t revision = 0;
  };
  absl::StatusOr<std::optional<KvEntry>> KvGet(const std::string& bucket, const std::string& key);
  absl::StatusOr<uint64_t> KvPut(const std::string& bucket, const std::string& key, absl::string_view value);
  // AlreadyExists when the key holds a value.
  absl::StatusOr<uint64_t> KvCreate(const std::string& bucket, const std::string& key, absl::string_view value);
  // FailedPrecondition when the key's revision is not `revision`.
  absl::StatusOr<uint64_t> KvUpdate(const std::string& bucket, const std::string& key, absl::string_view value,
                                    uint64_t revision);
  // Gone at once, with no delete marker left (KvKeys no longer lists it; KvCreate may take it).
  absl::Status KvDelete(const std::string& bucket, const std::string& key);
  // The keys of the bucket (none: empty), as its stream leader counts them.
  absl::StatusOr<std::vector<std::string>> KvKeys(const std::string& bucket);
  // The subjects of `stream` on `filter` that hold messages, with how many, as its leader counts.
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> SubjectCounts(const std::string& stream,
                                                                               const std::string& filter);

 private:
  Client(natsConnection* connection, absl::Duration timeout);
  absl::StatusOr<kvStore*> Bucket(const std::string& bucket);
  // PublishAll's messages `round` (indices), then the wait for their acknowledgements.
  void PublishRound(absl::Span<const OutMessage> messages, absl::Span<const size_t> round,
                    std::vector<absl::StatusOr<PubAck>>& results, absl::Time deadline);

  natsConnection* connection_;
  jsCtx* js_ = nullptr;
  // For creating streams and buckets: each is a raft group the servers elect, which on a busy
  // cluster takes longer than a publish may.
  jsCtx* admin_js_ = nullptr;
  std::unique_ptr<AckSlots> acks_;       // PublishAll's acknowledgements in flight
  std::unique_ptr<BucketCache> buckets_;  // opened KV handles, by name
  const absl::Duration timeout_;
};

}  // namespace triage::storage::jetstream
