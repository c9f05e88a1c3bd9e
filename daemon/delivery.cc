#include "daemon/delivery.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/crypto.h"
#include "router/json_writer.h"

namespace triage::daemon {
namespace {

using asio::as_tuple;
using asio::use_awaitable;

constexpr size_t kSnippetBytes = 256;

std::string Snippet(absl::string_view body) {
  std::string out(body.substr(0, kSnippetBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

// Appends one JSON line per delivery to a file and syncs it before acknowledging, so a line
// that was acknowledged survives a crash. The file is the newcomer's and the tests' helpdesk.
class FileSender : public Sender {
 public:
  explicit FileSender(config::DestinationOptions options) : options_(std::move(options)) {}
  ~FileSender() override {
    if (fd_ >= 0) ::close(fd_);
  }

  asio::awaitable<Attempt> Send(const storage::Lease& lease, int /*worker*/) override {
    if (fd_ < 0) {
      std::error_code ignored;  // open() below reports a missing folder clearly enough
      std::filesystem::create_directories(std::filesystem::path(options_.path).parent_path(), ignored);
      fd_ = ::open(options_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd_ < 0) {
        co_return Attempt{Attempt::Kind::kRetry,
                          absl::StrCat("open ", options_.path, ": ", std::strerror(errno))};
      }
    }
    std::string line = DeliveryBody(
        options_.name, lease, DeliveryId(options_.name, lease.entry.message_key, lease.entry.team));
    line.push_back('\n');
    // One write of the whole line: O_APPEND keeps concurrent lines from interleaving.
    const ssize_t written = ::write(fd_, line.data(), line.size());
    if (written != static_cast<ssize_t>(line.size()) || ::fdatasync(fd_) != 0) {
      const std::string error = std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      co_return Attempt{Attempt::Kind::kRetry, absl::StrCat("write ", options_.path, ": ", error)};
    }
    co_return Attempt{Attempt::Kind::kDelivered, "appended"};
  }

 private:
  const config::DestinationOptions options_;
  int fd_ = -1;
};

// POSTs Standard Webhooks: webhook-id (the stable delivery id), webhook-timestamp (this
// attempt) and webhook-signature (v1 HMAC-SHA256 over "id.timestamp.body").
class WebhookSender : public Sender {
 public:
  WebhookSender(config::DestinationOptions options, Url url, std::string key,
                std::shared_ptr<asio::ssl::context> tls, asio::any_io_executor executor)
      : options_(std::move(options)), url_(std::move(url)), key_(std::move(key)) {
    for (int i = 0; i < options_.concurrency; ++i) {
      clients_.push_back(std::make_unique<HttpClient>(executor, url_, tls, options_.connect_timeout,
                                                      options_.timeout));
    }
  }

  asio::awaitable<Attempt> Send(const storage::Lease& lease, int worker) override {
    const std::string id = DeliveryId(options_.name, lease.entry.message_key, lease.entry.team);
    const int64_t timestamp = absl::ToUnixSeconds(absl::Now());
    Request request{http::verb::post, url_.target, 11};
    request.set(http::field::content_type, "application/json");
    request.set(http::field::user_agent, "triaged/" TRIAGED_VERSION);
    request.body() = DeliveryBody(options_.name, lease, id);
    request.set("webhook-id", id);
    request.set("webhook-timestamp", std::to_string(timestamp));
    request.set("webhook-signature", StandardWebhooksSignature(key_, id, timestamp, request.body()));
    const ClientResult result = co_await clients_[worker]->Send(std::move(request));
    if (result.error) co_return ClassifyTransportError(result.error, result.error_stage);
    co_return ClassifyResponse(result.response, absl::Now());
  }

 private:
  const config::DestinationOptions options_;
  const Url url_;
  const std::string key_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
};

}  // namespace

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value, absl::Time now) {
  int64_t seconds = 0;
  if (absl::SimpleAtoi(value, &seconds)) {
    if (seconds < 0) return std::nullopt;
    return absl::Seconds(seconds);
  }
  absl::Time when;
  std::string error;
  if (absl::ParseTime("%a, %d %b %Y %H:%M:%S GMT", std::string(value), absl::UTCTimeZone(), &when,
                      &error)) {
    return std::max(absl::ZeroDuration(), when - now);
  }
  return std::nullopt;
}

Attempt ClassifyResponse(const Response& response, absl::Time now) {
  const int status = static_cast<int>(response.result_int());
  Attempt attempt;
  attempt.detail = absl::StrCat("HTTP ", status, ": ", Snippet(response.body()));
  if (status >= 200 && status < 300) {
    attempt.kind = Attempt::Kind::kDelivered;
  } else if (status == 408 || status == 425 || status == 429 || status >= 500) {
    attempt.kind = Attempt::Kind::kRetry;
    if (const auto header = response.find(http::field::retry_after); header != response.end()) {
      attempt.retry_after = ParseRetryAfter(ToAbsl(header->value()), now);
    }
  } else {
    attempt.kind = Attempt::Kind::kPermanent;
  }
  return attempt;
}

Attempt ClassifyTransportError(const boost::system::error_code& error, absl::string_view stage) {
  return Attempt{Attempt::Kind::kRetry, absl::StrCat(stage, ": ", error.message())};
}

absl::Duration RetryDelay(const config::DestinationOptions& options, uint32_t attempts,
                          std::optional<absl::Duration> retry_after, absl::BitGenRef random) {
  absl::Duration ceiling = options.backoff_initial;
  for (uint32_t i = 1; i < attempts && ceiling < options.backoff_max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, options.backoff_max);
  const double fraction = absl::Uniform(random, 0.0, 1.0);
  absl::Duration delay = ceiling * fraction;
  if (retry_after) delay = std::max(delay, std::min(*retry_after, options.retry_after_max));
  return delay;
}

std::string DeliveryId(absl::string_view destination, absl::string_view message_key,
                       absl::string_view team) {
  const std::string digest = Sha256(absl::StrCat(destination, "\n", message_key, "\n", team));
  return absl::StrCat("msg_", absl::BytesToHexString(digest.substr(0, 16)));
}

std::string DeliveryBody(const std::string& destination, const storage::Lease& lease,
                         const std::string& delivery_id) {
  router::JsonWriter w;
  w.BeginObject();
  w.Key("type").String(lease.entry.owner ? "ticket.created" : "ticket.informed");
  w.Key("timestamp").Time(absl::FromUnixMillis(lease.entry.enqueued_unix_ms));
  w.Key("data").BeginObject();
  w.Key("delivery_id").String(delivery_id);
  w.Key("destination").String(destination);
  w.Key("team").String(lease.entry.team);
  w.Key("role").String(lease.entry.owner ? "owner" : "informed");
  w.Key("ticket").Raw(lease.entry.ticket_json);
  w.EndObject();
  w.EndObject();
  return w.Take();
}

absl::StatusOr<std::unique_ptr<Sender>> MakeSender(const config::DestinationOptions& options,
                                                   asio::any_io_executor executor) {
  switch (options.type) {
    case config::DestinationType::kFile:
      return std::make_unique<FileSender>(options);
    case config::DestinationType::kWebhook: {
      absl::StatusOr<Url> url = ParseUrl(options.url);
      if (!url.ok()) return url.status();
      absl::StatusOr<std::string> key = StandardWebhooksKey(options.secret);
      if (!key.ok()) return key.status();
      std::shared_ptr<asio::ssl::context> tls;
      if (url->tls) {
        absl::StatusOr<std::shared_ptr<asio::ssl::context>> context = MakeClientTlsContext(options.ca_file);
        if (!context.ok()) return context.status();
        tls = *std::move(context);
      }
      return std::make_unique<WebhookSender>(options, *std::move(url), *std::move(key), tls, executor);
    }
  }
  return absl::InvalidArgumentError("unknown destination type");
}

Dispatcher::Dispatcher(asio::io_context& io, storage::Store& store,
                       config::DestinationOptions options, std::unique_ptr<Sender> sender,
                       Metrics& metrics)
    : store_(store),
      options_(std::move(options)),
      sender_(std::move(sender)),
      metrics_(metrics),
      strand_(asio::make_strand(io)) {
  for (int i = 0; i < options_.concurrency; ++i) {
    timers_.push_back(std::make_unique<asio::steady_timer>(strand_));
  }
}

void Dispatcher::Start() {
  SetPaused(false);
  for (int i = 0; i < options_.concurrency; ++i) {
    ++running_;
    asio::co_spawn(strand_, Worker(i), [this](std::exception_ptr e) {
      --running_;
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          spdlog::error("event=delivery_worker_failed destination={} error=\"{}\"", options_.name, ex.what());
        }
      }
    });
  }
}

void Dispatcher::Wake() {
  asio::post(strand_, [this] {
    ++wake_generation_;
    for (auto& timer : timers_) timer->cancel();
  });
}

void Dispatcher::Stop() {
  asio::post(strand_, [this] {
    stopping_ = true;
    for (auto& timer : timers_) timer->cancel();
  });
}

void Dispatcher::SetPaused(bool paused) {
  metrics_.destination_paused.Add({{"destination", options_.name}}).Set(paused ? 1 : 0);
}

asio::awaitable<void> Dispatcher::Worker(int index) {
  asio::steady_timer& timer = *timers_[index];
  while (!stopping_) {
    const absl::Time now = absl::Now();
    const uint64_t generation = wake_generation_;
    absl::Time wake_at;
    if (now < paused_until_) {
      wake_at = paused_until_;
    } else if (std::optional<storage::Lease> lease = store_.LeaseNext(options_.name, now)) {
      co_await Deliver(*std::move(lease), index);
      continue;
    } else {
      wake_at = store_.NextDue(options_.name);
    }
    if (generation != wake_generation_) continue;  // woken while looking: look again
    if (wake_at == absl::InfiniteFuture()) {
      timer.expires_at(asio::steady_timer::time_point::max());
    } else {
      timer.expires_after(ToChrono(std::max(absl::ZeroDuration(), wake_at - now)));
    }
    co_await timer.async_wait(as_tuple(use_awaitable));
  }
}

asio::awaitable<void> Dispatcher::Deliver(storage::Lease lease, int index) {
  const absl::Time start = absl::Now();
  const Attempt attempt = co_await sender_->Send(lease, index);
  const absl::Time end = absl::Now();
  metrics_.attempt_latency.Add({{"destination", options_.name}}, Buckets())
      .Observe(absl::ToDoubleSeconds(end - start));

  const char* outcome = "delivered";
  absl::Status stored;
  switch (attempt.kind) {
    case Attempt::Kind::kDelivered:
      stored = store_.Ack(lease);
      consecutive_failures_ = 0;
      if (paused_until_ != absl::InfinitePast()) {
        paused_until_ = absl::InfinitePast();
        SetPaused(false);
      }
      metrics_.delivery_latency.Add({{"destination", options_.name}}, Buckets())
          .Observe(absl::ToDoubleSeconds(end - absl::FromUnixMillis(lease.entry.enqueued_unix_ms)));
      break;
    case Attempt::Kind::kRetry: {
      ++consecutive_failures_;
      // The destination as a whole waits: exponential in consecutive failures, at least the
      // Retry-After it asked for.
      const absl::Duration pause = RetryDelay(options_, consecutive_failures_, attempt.retry_after, random_);
      paused_until_ = std::max(paused_until_, end + pause);
      SetPaused(true);
      if (lease.entry.attempts + 1 >= static_cast<uint32_t>(options_.max_attempts)) {
        outcome = "dead_letter";
        stored = store_.DeadLetter(lease, absl::StrCat("gave up after ", options_.max_attempts,
                                                       " attempts; last: ", attempt.detail));
      } else {
        outcome = "retry";
        const absl::Duration delay =
            RetryDelay(options_, lease.entry.attempts + 1, attempt.retry_after, random_);
        stored = store_.RetryLater(lease, end + delay, attempt.detail);
      }
      spdlog::warn("event=delivery_failed destination={} attempt={} outcome={} detail=\"{}\"",
                   options_.name, lease.entry.attempts + 1, outcome, attempt.detail);
      break;
    }
    case Attempt::Kind::kPermanent:
      outcome = "dead_letter";
      stored = store_.DeadLetter(lease, attempt.detail);
      spdlog::error("event=delivery_rejected destination={} detail=\"{}\"", options_.name, attempt.detail);
      break;
  }
  if (!stored.ok()) {
    spdlog::error("event=delivery_store_failed destination={} error=\"{}\"", options_.name,
                  std::string(stored.message()));
  }
  metrics_.delivery_attempts.Add({{"destination", options_.name}, {"outcome", outcome}}).Increment();
}

}  // namespace triage::daemon
