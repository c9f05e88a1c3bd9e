#include "storage/jetstream/nats.h"

#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace triage::storage::jetstream {
namespace {

// cnats status (and the server's JetStream error code) to absl::Status, one meaning per code.
absl::Status ToStatus(natsStatus s, jsErrCode code, absl::string_view what) {
  if (s == NATS_OK) return absl::OkStatus();
  // The server's words, when cnats kept them (this thread's last error).
  const char* last = s == NATS_ERR ? nats_GetLastError(nullptr) : nullptr;
  const std::string text = absl::StrCat(what, ": ", last != nullptr ? last : natsStatus_GetText(s),
                                        code != 0 ? absl::StrCat(" (JetStream error ", static_cast<int>(code), ")") : "");
  if (last != nullptr && absl::string_view(last).find("no message found") != absl::string_view::npos) {
    return absl::NotFoundError(text);
  }
  switch (code) {
    case JSNoMessageFoundErr:
    case JSStreamNotFoundErr:
      return absl::NotFoundError(text);
    case JSStreamStoreFailedErr:  // "maximum messages per subject exceeded": the one message is there
      return absl::AlreadyExistsError(text);
    case JSStreamWrongLastSequenceErr:
      return absl::FailedPreconditionError(text);
    default:
      break;
  }
  switch (s) {
    case NATS_NOT_FOUND:
      return absl::NotFoundError(text);
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_NO_SERVER:
    case NATS_SLOW_CONSUMER:
      return absl::UnavailableError(text);
    default:
      return absl::InternalError(text);
  }
}

absl::Status ToStatus(natsStatus s, absl::string_view what) { return ToStatus(s, static_cast<jsErrCode>(0), what); }

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

// An ordered consumer's options on `stream` from `start_seq` (0: the first), pointing into it.
jsSubOptions OrderedFrom(const std::string& stream, uint64_t start_seq) {
  jsSubOptions options;
  jsSubOptions_Init(&options);
  options.Stream = stream.c_str();
  options.Ordered = true;
  if (start_seq > 0) {
    options.Config.DeliverPolicy = js_DeliverByStartSequence;
    options.Config.OptStartSeq = start_seq;
  } else {
    options.Config.DeliverPolicy = js_DeliverAll;
  }
  return options;
}

// A natsMsg for `message`, headers set.
absl::StatusOr<natsMsg*> Build(const OutMessage& message) {
  natsMsg* msg = nullptr;
  if (natsStatus s = natsMsg_Create(&msg, message.subject.c_str(), nullptr, message.data.data(),
                                    static_cast<int>(message.data.size()));
      s != NATS_OK) {
    return ToStatus(s, "message");
  }
  for (const auto& [key, value] : message.headers) {
    if (natsStatus s = natsMsgHeader_Set(msg, key.c_str(), value.c_str()); s != NATS_OK) {
      natsMsg_Destroy(msg);
      return ToStatus(s, "header");
    }
  }
  return msg;
}

// The publish options of `message` (pointing into it).
jsPubOptions PublishOptions(const OutMessage& message, absl::Duration timeout) {
  jsPubOptions options;
  jsPubOptions_Init(&options);
  options.MaxWait = Millis(timeout);
  if (!message.msg_id.empty()) options.MsgId = message.msg_id.c_str();
  if (message.expect_last_subject_seq) {
    if (*message.expect_last_subject_seq == 0) {
      options.ExpectNoMessage = true;
    } else {
      options.ExpectLastSubjectSeq = *message.expect_last_subject_seq;
    }
  }
  return options;
}

}  // namespace

InMessage::InMessage(natsMsg* msg) : msg_(msg) {
  // A DirectGet answer names the stored subject in a header; other messages carry it.
  const char* subject = nullptr;
  if (natsMsgHeader_Get(msg_, "Nats-Subject", &subject) != NATS_OK || subject == nullptr) {
    subject = natsMsg_GetSubject(msg_);
  }
  subject_ = subject != nullptr ? subject : "";
  seq_ = natsMsg_GetSequence(msg_);
  if (seq_ == 0) {
    const char* seq = nullptr;
    if (natsMsgHeader_Get(msg_, "Nats-Sequence", &seq) == NATS_OK) (void)absl::SimpleAtoi(seq, &seq_);
  }
  if (seq_ == 0) {
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg_) == NATS_OK) {
      seq_ = meta->Sequence.Stream;
      jsMsgMetaData_Destroy(meta);
    }
  }
}

InMessage::InMessage(InMessage&& other) noexcept
    : msg_(std::exchange(other.msg_, nullptr)), subject_(std::move(other.subject_)), seq_(other.seq_) {}

InMessage& InMessage::operator=(InMessage&& other) noexcept {
  if (this == &other) return *this;
  if (msg_ != nullptr) natsMsg_Destroy(msg_);
  msg_ = std::exchange(other.msg_, nullptr);
  subject_ = std::move(other.subject_);
  seq_ = other.seq_;
  return *this;
}

InMessage::~InMessage() {
  if (msg_ != nullptr) natsMsg_Destroy(msg_);
}

absl::string_view InMessage::data() const {
  return {natsMsg_GetData(msg_), static_cast<size_t>(natsMsg_GetDataLength(msg_))};
}

absl::string_view InMessage::Header(const char* key) const {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg_, key, &value) != NATS_OK || value == nullptr) return {};
  return value;
}

// PublishAll's acknowledgements: one slot per message in flight, found by its natsMsg.
struct AckSlots {
  std::mutex mu;
  absl::flat_hash_map<natsMsg*, size_t> slots;
  std::vector<absl::StatusOr<PubAck>>* results = nullptr;
  std::vector<size_t> no_responders;  // slots no server took (PublishAll sends them again)
};

struct BucketCache {
  std::mutex mu;
  std::map<std::string, kvStore*> open;
};

namespace {

// Runs on a cnats thread for each asynchronous publish, acknowledged or failed.
void OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
  auto* acks = static_cast<AckSlots*>(closure);
  {
    std::lock_guard lock(acks->mu);
    const auto slot = acks->slots.find(msg);
    if (slot != acks->slots.end() && acks->results != nullptr) {
      absl::StatusOr<PubAck>& result = (*acks->results)[slot->second];
      if (error != nullptr) {
        result = ToStatus(error->Err, error->ErrCode, error->ErrText != nullptr ? error->ErrText : "publish");
        if (error->Err == NATS_NO_RESPONDERS) acks->no_responders.push_back(slot->second);
      } else if (ack != nullptr) {
        result = PubAck{ack->Sequence, ack->Duplicate};
      }
      acks->slots.erase(slot);
    }
  }
  natsMsg_Destroy(msg);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ConnectOptions& options) {
  if (options.servers.empty()) return absl::InvalidArgumentError("no NATS servers");
  natsOptions* opts = nullptr;
  if (natsStatus s = natsOptions_Create(&opts); s != NATS_OK) return ToStatus(s, "options");
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> owned(opts, natsOptions_Destroy);
  std::vector<const char*> servers;
  for (const std::string& server : options.servers) servers.push_back(server.c_str());
  natsStatus s = natsOptions_SetServers(opts, servers.data(), static_cast<int>(servers.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, options.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts, Millis(options.timeout));
  // Reconnect without end: a cluster that is down comes back, and calls fail Unavailable
  // meanwhile (the daemon answers 503).
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK && !options.credentials_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts, options.credentials_file.c_str(), nullptr);
  }
  if (s == NATS_OK && !options.ca_file.empty()) {
    s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, options.ca_file.c_str());
  }
  if (s != NATS_OK) return ToStatus(s, "NATS options");
  natsConnection* connection = nullptr;
  if (s = natsConnection_Connect(&connection, opts); s != NATS_OK) return ToStatus(s, "connect to NATS");
  std::unique_ptr<Client> client(new Client(connection, options.timeout));
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = Millis(options.timeout);
  js_options.PublishAsync.AckHandler = &OnAck;
  js_options.PublishAsync.AckHandlerClosure = client->acks_.get();
  js_options.PublishAsync.MaxPending = 4096;
  if (s = natsConnection_JetStream(&client->js_, connection, &js_options); s != NATS_OK) {
    return ToStatus(s, "JetStream context");
  }
  jsOptions admin_options;
  jsOptions_Init(&admin_options);
  admin_options.Wait = std::max<int64_t>(Millis(options.timeout), 15'000);
  if (s = natsConnection_JetStream(&client->admin_js_, connection, &admin_options); s != NATS_OK) {
    return ToStatus(s, "JetStream context");
  }
  return client;
}

Client::Client(natsConnection* connection, absl::Duration timeout)
    : connection_(connection),
      acks_(std::make_unique<AckSlots>()),
      buckets_(std::make_unique<BucketCache>()),
      timeout_(timeout) {}

Client::~Client() {
  for (auto& [name, kv] : buckets_->open) kvStore_Destroy(kv);
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (admin_js_ != nullptr) jsCtx_Destroy(admin_js_);
  natsConnection_Destroy(connection_);
}

absl::Status Client::EnsureStream(const StreamSpec& spec, bool quick) {
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = spec.name.c_str();
  std::vector<const char*> subjects;
  for (const std::string& subject : spec.subjects) subjects.push_back(subject.c_str());
  config.Subjects = subjects.data();
  config.SubjectsLen = static_cast<int>(subjects.size());
  config.Storage = js_FileStorage;
  config.Retention = js_LimitsPolicy;
  config.Replicas = spec.replicas;
  config.MaxMsgs = spec.max_msgs;
  config.MaxMsgsPerSubject = spec.max_msgs_per_subject;
  config.MaxAge = absl::ToInt64Nanoseconds(spec.max_age);
  if (spec.duplicates > absl::ZeroDuration()) config.Duplicates = absl::ToInt64Nanoseconds(spec.duplicates);
  config.Discard = spec.discard_new ? js_DiscardNew : js_DiscardOld;
  config.DiscardNewPerSubject = spec.discard_new_per_subject;
  config.AllowDirect = spec.allow_direct;
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  jsCtx* const js = quick ? js_ : admin_js_;
  natsStatus s = js_AddStream(&info, js, &config, nullptr, &code);
  if (s != NATS_OK && code == JSStreamNameExistErr) {
    code = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&info, js, &config, nullptr, &code);
  }
  if (info != nullptr) jsStreamInfo_Destroy(info);
  return ToStatus(s, code, absl::StrCat("stream ", spec.name));
}

absl::Status Client::DeleteStream(const std::string& name) {
  jsErrCode code = static_cast<jsErrCode>(0);
  return ToStatus(js_DeleteStream(admin_js_, name.c_str(), nullptr, &code), code,
                  absl::StrCat("delete stream ", name));
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> Client::StreamState(const std::string& name) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code); s != NATS_OK) {
    return ToStatus(s, code, absl::StrCat("stream ", name));
  }
  const std::pair<uint64_t, uint64_t> state{info->State.Msgs, info->State.LastSeq};
  jsStreamInfo_Destroy(info);
  return state;
}

absl::StatusOr<std::string> Client::StreamLeader(const std::string& name) {
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code); s != NATS_OK) {
    return ToStatus(s, code, absl::StrCat("stream ", name));
  }
  std::string leader = info->Cluster != nullptr && info->Cluster->Leader != nullptr ? info->Cluster->Leader : "";
  jsStreamInfo_Destroy(info);
  return leader;
}

namespace {

// "No responders": no server took the message (a stream just created, or electing its leader),
// so it is sent again after this pause while the publish timeout allows.
constexpr absl::Duration kNoRespondersPause = absl::Milliseconds(100);

}  // namespace

absl::StatusOr<PubAck> Client::Publish(const OutMessage& message) {
  const absl::Time deadline = absl::Now() + timeout_;
  for (;;) {
    absl::StatusOr<natsMsg*> msg = Build(message);
    if (!msg.ok()) return msg.status();
    jsPubOptions options = PublishOptions(message, std::max(absl::Milliseconds(1), deadline - absl::Now()));
    jsPubAck* ack = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_PublishMsg(&ack, js_, *msg, &options, &code);
    natsMsg_Destroy(*msg);
    if (s == NATS_NO_RESPONDERS && absl::Now() + kNoRespondersPause < deadline) {
      absl::SleepFor(kNoRespondersPause);
      continue;
    }
    if (s != NATS_OK) return ToStatus(s, code, absl::StrCat("publish to ", message.subject));
    const PubAck out{ack->Sequence, ack->Duplicate};
    jsPubAck_Destroy(ack);
    return out;
  }
}

std::vector<absl::StatusOr<PubAck>> Client::PublishAll(absl::Span<const OutMessage> messages) {
  const absl::Time deadline = absl::Now() + timeout_;
  std::vector<absl::StatusOr<PubAck>> results(
      messages.size(), absl::UnavailableError("no acknowledgement within the publish timeout"));
  {
    std::lock_guard lock(acks_->mu);
    acks_->results = &results;
    acks_->no_responders.clear();
  }
  std::vector<size_t> round(messages.size());
  for (size_t i = 0; i < round.size(); ++i) round[i] = i;
  for (;;) {
    PublishRound(messages, round, results, deadline);
    {
      std::lock_guard lock(acks_->mu);
      round.swap(acks_->no_responders);
      acks_->no_responders.clear();
    }
    if (round.empty() || absl::Now() + kNoRespondersPause >= deadline) break;
    absl::SleepFor(kNoRespondersPause);
  }
  std::lock_guard lock(acks_->mu);
  acks_->slots.clear();  // late acknowledgements find no slot
  acks_->results = nullptr;
  return results;
}

void Client::PublishRound(absl::Span<const OutMessage> messages, absl::Span<const size_t> round,
                          std::vector<absl::StatusOr<PubAck>>& results, absl::Time deadline) {
  for (const size_t i : round) {
    absl::StatusOr<natsMsg*> msg = Build(messages[i]);
    if (!msg.ok()) {
      results[i] = msg.status();
      continue;
    }
    jsPubOptions options = PublishOptions(messages[i], std::max(absl::Milliseconds(1), deadline - absl::Now()));
    natsMsg* raw = *msg;
    {
      std::lock_guard lock(acks_->mu);
      acks_->slots[raw] = i;
    }
    // On success cnats owns the message (OnAck destroys it) and clears the pointer; on failure
    // it stays the caller's.
    if (natsStatus s = js_PublishMsgAsync(js_, &raw, &options); s != NATS_OK) {
      std::lock_guard lock(acks_->mu);
      acks_->slots.erase(*msg);
      results[i] = ToStatus(s, absl::StrCat("publish to ", messages[i].subject));
      natsMsg_Destroy(*msg);
    }
  }
  jsPubOptions wait;
  jsPubOptions_Init(&wait);
  wait.MaxWait = std::max<int64_t>(1, Millis(deadline - absl::Now()));
  (void)js_PublishAsyncComplete(js_, &wait);  // a timeout leaves those results as they are
}

absl::StatusOr<std::optional<InMessage>> Client::GetLast(const std::string& stream, const std::string& subject,
                                                         From from) {
  if (from == From::kLeader) {
    natsMsg* msg = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetLastMsg(&msg, js_, stream.c_str(), subject.c_str(), nullptr, &code);
    if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return std::optional<InMessage>();
    if (s != NATS_OK) return ToStatus(s, code, absl::StrCat("get ", subject));
    return std::optional<InMessage>(InMessage(msg));
  }
  jsDirectGetMsgOptions get;
  jsDirectGetMsgOptions_Init(&get);
  get.LastBySubject = subject.c_str();
  natsMsg* msg = nullptr;
  const natsStatus s = js_DirectGetMsg(&msg, js_, stream.c_str(), nullptr, &get);
  if (s == NATS_NOT_FOUND) return std::optional<InMessage>();
  if (s != NATS_OK) return ToStatus(s, absl::StrCat("get ", subject));
  return std::optional<InMessage>(InMessage(msg));
}

absl::StatusOr<std::optional<InMessage>> Client::Get(const std::string& stream, uint64_t seq) {
  natsMsg* msg = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetMsg(&msg, js_, stream.c_str(), seq, nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) return std::optional<InMessage>();
  if (s != NATS_OK) return ToStatus(s, code, absl::StrCat("get ", stream, " ", seq));
  InMessage got(msg);
  // Another seq's message must never pass for this one (its entry would be sent, and this one
  // recorded delivered): an error, read again later.
  if (got.seq() != 0 && got.seq() != seq) {
    return absl::UnavailableError(absl::StrCat("get ", stream, " ", seq, ": the answer was seq ", got.seq()));
  }
  return std::optional<InMessage>(std::move(got));
}

absl::Status Client::Delete(const std::string& stream, uint64_t seq) {
  jsErrCode code = static_cast<jsErrCode>(0);
  return ToStatus(js_DeleteMsg(js_, stream.c_str(), seq, nullptr, &code), code,
                  absl::StrCat("delete ", stream, " ", seq));
}

absl::Status Client::Read(const std::string& stream, const std::string& filter, uint64_t start_seq,
                          absl::FunctionRef<bool(const InMessage&)> each) {
  if (filter.empty()) {
    // The stream's own count, from its leader: none means done now.
    absl::StatusOr<std::pair<uint64_t, uint64_t>> state = StreamState(stream);
    if (!state.ok()) return state.status();
    if (state->first == 0 || state->second < start_seq) return absl::OkStatus();
  }
  jsSubOptions options = OrderedFrom(stream, start_seq);
  natsSubscription* sub = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string subject = filter.empty() ? ">" : filter;
  if (natsStatus s = js_SubscribeSync(&sub, js_, subject.c_str(), nullptr, &options, &code); s != NATS_OK) {
    return ToStatus(s, code, absl::StrCat("read ", stream));
  }
  std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> owned(sub, [](natsSubscription* s) {
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
  });
  uint64_t matching = 0;
  if (!filter.empty()) {
    // What the consumer has to deliver on the filter: sent already or still pending. None
    // means done now (rather than after a wait for a message that will not come).
    jsConsumerInfo* info = nullptr;
    if (natsStatus s = natsSubscription_GetConsumerInfo(&info, sub, nullptr, &code); s != NATS_OK) {
      return ToStatus(s, code, absl::StrCat("read ", stream));
    }
    matching = info->NumPending + info->Delivered.Consumer;
    jsConsumerInfo_Destroy(info);
    if (start_seq <= 1) {
      // The consumer may sit on a replica that has not applied the latest publishes (seen: no
      // dead letter of three written a moment before): the stream leader's count holds, and the
      // consumer is waited for until it delivers as many.
      absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> counts = SubjectCounts(stream, filter);
      if (!counts.ok()) return counts.status();
      uint64_t leader = 0;
      for (const auto& one : *counts) leader += one.second;
      matching = std::max(matching, leader);
    }
    if (matching == 0) return absl::OkStatus();
  }
  // Done after the last message: on a filter, once as many came as matched when the consumer
  // was made (the pending count a filtered consumer puts in each message was seen to reach 0
  // one message early: a listing came back short); otherwise when a message says none is left.
  uint64_t read = 0;
  bool none_left = false;
  for (;;) {
    natsMsg* msg = nullptr;
    if (natsStatus s = natsSubscription_NextMsg(&msg, sub, Millis(timeout_)); s != NATS_OK) {
      // A matching message deleted meanwhile never comes: done if the last one said so.
      if (s == NATS_TIMEOUT && none_left) return absl::OkStatus();
      return ToStatus(s, absl::StrCat("read ", stream));
    }
    uint64_t left = 0;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      left = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    none_left = left == 0;
    ++read;
    const InMessage in(msg);
    if (!each(in)) return absl::OkStatus();
    if (filter.empty() ? none_left : read >= matching) return absl::OkStatus();
  }
}

struct FollowState {
  Client::Each each;
  Client::Answer answer;  // Serve's
  natsSubscription* sub = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool complete = false;  // cnats delivers nothing more
};

namespace {

void OnFollowed(natsConnection* /*nc*/, natsSubscription* /*sub*/, natsMsg* msg, void* closure) {
  const InMessage in(msg);
  static_cast<FollowState*>(closure)->each(in);
}

void OnRequest(natsConnection* nc, natsSubscription* /*sub*/, natsMsg* msg, void* closure) {
  auto* state = static_cast<FollowState*>(closure);
  const absl::string_view request(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
  const char* reply = natsMsg_GetReply(msg);
  if (reply != nullptr) {
    const std::string answer = state->answer(request);
    (void)natsConnection_Publish(nc, reply, answer.data(), static_cast<int>(answer.size()));
  }
  natsMsg_Destroy(msg);
}

void OnFollowComplete(void* closure) {
  auto* state = static_cast<FollowState*>(closure);
  {
    std::lock_guard lock(state->mu);
    state->complete = true;
  }
  state->cv.notify_all();
}

}  // namespace

Following::Following(std::unique_ptr<FollowState> state) : state_(std::move(state)) {}

bool Following::Valid() const { return natsSubscription_IsValid(state_->sub); }

Following::~Following() {
  natsSubscription_Unsubscribe(state_->sub);
  {
    // A callback running now finishes first; cnats then calls the completion.
    std::unique_lock lock(state_->mu);
    state_->cv.wait_for(lock, std::chrono::seconds(10), [this] { return state_->complete; });
  }
  natsSubscription_Destroy(state_->sub);
}

absl::StatusOr<std::unique_ptr<Following>> Client::Follow(const std::string& stream, uint64_t start_seq, Each each) {
  jsSubOptions options = OrderedFrom(stream, start_seq);
  auto state = std::make_unique<FollowState>();
  state->each = std::move(each);
  jsErrCode code = static_cast<jsErrCode>(0);
  if (natsStatus s = js_Subscribe(&state->sub, js_, ">", OnFollowed, state.get(), nullptr, &options, &code);
      s != NATS_OK) {
    return ToStatus(s, code, absl::StrCat("follow ", stream));
  }
  if (natsStatus s = natsSubscription_SetOnCompleteCB(state->sub, OnFollowComplete, state.get()); s != NATS_OK) {
    natsSubscription_Unsubscribe(state->sub);
    natsSubscription_Destroy(state->sub);
    return ToStatus(s, absl::StrCat("follow ", stream));
  }
  return std::make_unique<Following>(std::move(state));
}

absl::StatusOr<std::unique_ptr<Following>> Client::Serve(const std::string& subject, Answer answer) {
  auto state = std::make_unique<FollowState>();
  state->answer = std::move(answer);
  if (natsStatus s = natsConnection_Subscribe(&state->sub, connection_, subject.c_str(), OnRequest, state.get());
      s != NATS_OK) {
    return ToStatus(s, absl::StrCat("serve ", subject));
  }
  if (natsStatus s = natsSubscription_SetOnCompleteCB(state->sub, OnFollowComplete, state.get()); s != NATS_OK) {
    natsSubscription_Unsubscribe(state->sub);
    natsSubscription_Destroy(state->sub);
    return ToStatus(s, absl::StrCat("serve ", subject));
  }
  return std::make_unique<Following>(std::move(state));
}

absl::StatusOr<std::string> Client::Request(const std::string& subject, absl::string_view request,
                                            absl::Duration timeout) {
  natsMsg* reply = nullptr;
  const natsStatus s = natsConnection_Request(&reply, connection_, subject.c_str(), request.data(),
                                              static_cast<int>(request.size()), std::max<int64_t>(1, Millis(timeout)));
  if (s != NATS_OK) return ToStatus(s, absl::StrCat("request to ", subject));
  std::string out(natsMsg_GetData(reply), static_cast<size_t>(natsMsg_GetDataLength(reply)));
  natsMsg_Destroy(reply);
  return out;
}

absl::StatusOr<std::vector<std::string>> Client::StreamNames(absl::string_view prefix) {
  jsStreamNamesList* list = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_StreamNames(&list, js_, nullptr, &code);
  if (s == NATS_NOT_FOUND) return std::vector<std::string>();
  if (s != NATS_OK) return ToStatus(s, code, "stream names");
  std::vector<std::string> names;
  for (int i = 0; i < list->Count; ++i) {
    if (absl::StartsWith(list->List[i], prefix)) names.emplace_back(list->List[i]);
  }
  jsStreamNamesList_Destroy(list);
  return names;
}

absl::Status Client::EnsureBucket(const std::string& bucket, int replicas, absl::Duration ttl) {
  kvConfig config;
  kvConfig_Init(&config);
  config.Bucket = bucket.c_str();
  config.History = 1;
  config.TTL = absl::ToInt64Nanoseconds(ttl);
  config.StorageType = js_FileStorage;
  config.Replicas = replicas;
  kvStore* kv = nullptr;
  if (natsStatus s = js_CreateKeyValue(&kv, admin_js_, &config); s != NATS_OK) {
    return ToStatus(s, absl::StrCat("bucket ", bucket));
  }
  // Its calls wait as long as the context it came from: reopened on the publish one (Bucket).
  kvStore_Destroy(kv);
  return Bucket(bucket).status();
}

absl::StatusOr<kvStore*> Client::Bucket(const std::string& bucket) {
  std::lock_guard lock(buckets_->mu);
  if (auto it = buckets_->open.find(bucket); it != buckets_->open.end()) return it->second;
  kvStore* kv = nullptr;
  if (natsStatus s = js_KeyValue(&kv, js_, bucket.c_str()); s != NATS_OK) {
    return ToStatus(s, absl::StrCat("bucket ", bucket));
  }
  buckets_->open.emplace(bucket, kv);
  return kv;
}

std::string Client::KvStream(absl::string_view bucket) { return absl::StrCat("KV_", bucket); }
std::string Client::KvSubject(absl::string_view bucket, absl::string_view key) {
  return absl::StrCat("$KV.", bucket, ".", key);
}

absl::StatusOr<std::optional<Client::KvEntry>> Client::KvGet(const std::string& bucket, const std::string& key) {
  // From the bucket's stream leader: cnats' own get may be answered by a replica that has not
  // applied a put acknowledged a moment ago.
  absl::StatusOr<std::optional<InMessage>> last = GetLast(KvStream(bucket), KvSubject(bucket, key), From::kLeader);
  if (!last.ok()) return last.status();
  if (!last->has_value()) return std::optional<KvEntry>();
  const absl::string_view op = (*last)->Header("KV-Operation");
  if (op == "DEL" || op == "PURGE") return std::optional<KvEntry>();
  return std::optional<KvEntry>(KvEntry{std::string((*last)->data()), (*last)->seq()});
}

absl::StatusOr<uint64_t> Client::KvPut(const std::string& bucket, const std::string& key, absl::string_view value) {
  absl::StatusOr<kvStore*> kv = Bucket(bucket);
  if (!kv.ok()) return kv.status();
  uint64_t revision = 0;
  if (natsStatus s = kvStore_Put(&revision, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
      s != NATS_OK) {
    return ToStatus(s, absl::StrCat("put ", bucket, ".", key));
  }
  return revision;
}

absl::StatusOr<uint64_t> Client::KvCreate(const std::string& bucket, const std::string& key, absl::string_view value) {
  absl::StatusOr<kvStore*> kv = Bucket(bucket);
  if (!kv.ok()) return kv.status();
  uint64_t revision = 0;
  const natsStatus s = kvStore_Create(&revision, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  // cnats answers a taken key with the server's "wrong last sequence".
  if (s == NATS_ERR) {
    const char* text = nats_GetLastError(nullptr);
    if (text != nullptr && absl::string_view(text).find("wrong last sequence") != absl::string_view::npos) {
      return absl::AlreadyExistsError(absl::StrCat(bucket, ".", key, " exists"));
    }
  }
  if (s != NATS_OK) return ToStatus(s, absl::StrCat("create ", bucket, ".", key));
  return revision;
}

absl::StatusOr<uint64_t> Client::KvUpdate(const std::string& bucket, const std::string& key, absl::string_view value,
                                          uint64_t revision) {
  absl::StatusOr<kvStore*> kv = Bucket(bucket);
  if (!kv.ok()) return kv.status();
  uint64_t next = 0;
  const natsStatus s =
      kvStore_Update(&next, *kv, key.c_str(), value.data(), static_cast<int>(value.size()), revision);
  if (s == NATS_ERR) {
    const char* text = nats_GetLastError(nullptr);
    if (text != nullptr && absl::string_view(text).find("wrong last sequence") != absl::string_view::npos) {
      return absl::FailedPreconditionError(absl::StrCat(bucket, ".", key, " is not at revision ", revision));
    }
  }
  if (s != NATS_OK) return ToStatus(s, absl::StrCat("update ", bucket, ".", key));
  return next;
}

absl::Status Client::KvDelete(const std::string& bucket, const std::string& key) {
  // A purge of the key's subject, which leaves no delete marker: KvKeys lists the subjects the
  // bucket's stream holds.
  const std::string subject = KvSubject(bucket, key);
  jsOptions options;
  jsOptions_Init(&options);
  options.Stream.Purge.Subject = subject.c_str();
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_PurgeStream(js_, KvStream(bucket).c_str(), &options, &code);
  return ToStatus(s, code, absl::StrCat("delete ", bucket, ".", key));
}

absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> Client::SubjectCounts(const std::string& stream,
                                                                                     const std::string& filter) {
  jsOptions options;
  jsOptions_Init(&options);
  options.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&info, js_, stream.c_str(), &options, &code);
  if (s != NATS_OK) return ToStatus(s, code, absl::StrCat("subjects of ", stream));
  std::vector<std::pair<std::string, uint64_t>> counts;
  if (info->State.Subjects != nullptr) {
    for (int i = 0; i < info->State.Subjects->Count; ++i) {
      const jsStreamStateSubject& one = info->State.Subjects->List[i];
      if (one.Msgs > 0) counts.emplace_back(one.Subject, one.Msgs);
    }
  }
  jsStreamInfo_Destroy(info);
  return counts;
}

absl::StatusOr<std::vector<std::string>> Client::KvKeys(const std::string& bucket) {
  // The stream leader's subjects. cnats' kvStore_Keys reads an ephemeral consumer, which may sit
  // on a replica that has not applied the latest puts (seen: none of two keys put a moment
  // before).
  const std::string filter = KvSubject(bucket, ">");
  absl::StatusOr<std::vector<std::pair<std::string, uint64_t>>> counts = SubjectCounts(KvStream(bucket), filter);
  if (!counts.ok()) return counts.status();
  std::vector<std::string> keys;
  const size_t prefix = filter.size() - 1;
  for (const auto& [subject, messages] : *counts) {
    if (subject.size() > prefix) keys.push_back(subject.substr(prefix));
  }
  return keys;
}

}  // namespace triage::storage::jetstream
