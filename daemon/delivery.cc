#include "daemon/delivery.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/async.h"
#include "daemon/crypto.h"
#include "router/destinations/destination_type.h"

namespace triage::daemon {
namespace {

// How long a worker waits before looking again at storage that cannot take writes.
constexpr absl::Duration kStorageWait = absl::Seconds(1);
// How long the count loop steps aside when deliveries are due (they take the tokens first).
constexpr absl::Duration kCountYield = absl::Milliseconds(200);
// The last error of a reply entry while it is being sent (Store::MarkSending).
constexpr absl::string_view kSendingNote = "sending: if this stays after a restart, the outcome is unknown";
// How long a helpdesk's note on the acknowledgement waits for it to be sent (the thread's later
// notes wait behind it).
constexpr absl::Duration kReplyNoteWait = absl::Seconds(30);
// How often an alert that links to a ticket looks for it while it waits (ticket_link_wait).
constexpr absl::Duration kLinkPoll = absl::Milliseconds(500);

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

// What the destination type renders one delivery from.
router::DeliveryContext Context(const config::DestinationOptions& options, const storage::Lease& lease,
                                const Known& known) {
  router::DeliveryContext context{
      .destination = options.name,
      .team = lease.entry.team,
      .owner = lease.entry.owner,
      .level = lease.entry.level,
      .delivery_id = DeliveryId(options.name, lease.entry.message_key, lease.entry.team),
      .enqueued_unix_ms = lease.entry.enqueued_unix_ms,
      .ticket_json = lease.entry.ticket_json,
      .linked_ticket_url = known.linked_ticket_url,
      .reply_text = known.reply_text,
  };
  if (known.thread_ticket) {
    context.remote_ticket = known.thread_ticket->id;
    context.ticket_level = known.thread_ticket->level;
    context.ticket_team = known.thread_ticket->team;
  }
  return context;
}

// Appends one JSON line per delivery to a file and syncs it before acknowledging, so a line
// that was acknowledged survives a crash. The file is the newcomer's and the tests' helpdesk.
// Group commit, like ingest: the lines of the workers that send while a write is under way
// wait together, then go in one write and one fdatasync on the blocking pool, and all of them
// are answered by its outcome. The worker's strand is free meanwhile.
class FileSender : public Sender {
 public:
  FileSender(config::DestinationOptions options, BlockingPool& pool)
      : options_(std::move(options)),
        view_{options_.settings, templates_, options_.group_ids, options_.join_informed, &options_.watchers},
        path_(options_.settings.Get("path")),
        append_(pool, [this](std::vector<std::string>& lines) { return Append(lines); }) {}
  ~FileSender() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // On the destination's strand, like every Send.
  asio::awaitable<Attempt> Send(const storage::Lease& lease, const Known& known, int /*worker*/) override {
    Known line_known;
    line_known.reply_text = known.reply_text;
    absl::StatusOr<router::OutboundRequest> line = options_.type->Render(
        view_, nullptr, Context(options_, lease, line_known));
    if (!line.ok()) co_return Attempt{Attempt::Kind::kPermanent, std::string(line.status().message())};
    line->body.push_back('\n');
    co_return co_await append_.Call(std::move(line->body));
  }

 private:
  // On a pool thread, one group at a time: every line in one write, one fdatasync.
  std::vector<Attempt> Append(const std::vector<std::string>& lines) {
    std::string all;
    for (const std::string& line : lines) all += line;
    Attempt outcome{Attempt::Kind::kDelivered, "appended"};
    if (fd_ < 0) {
      std::error_code ignored;  // open() below reports a missing folder clearly enough
      std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ignored);
      fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
      if (fd_ < 0) outcome = Attempt{Attempt::Kind::kRetry, absl::StrCat("open ", path_, ": ", std::strerror(errno))};
    }
    // One write of whole lines: O_APPEND keeps them from interleaving with other writers.
    if (fd_ >= 0 &&
        (::write(fd_, all.data(), all.size()) != static_cast<ssize_t>(all.size()) || ::fdatasync(fd_) != 0)) {
      const std::string error = std::strerror(errno);
      ::close(fd_);
      fd_ = -1;
      outcome = Attempt{Attempt::Kind::kRetry, absl::StrCat("write ", path_, ": ", error)};
    }
    return std::vector<Attempt>(lines.size(), outcome);
  }

  const config::DestinationOptions options_;
  const router::TicketTemplates templates_;  // none: a line is the event, not a rendered ticket
  const router::DestinationView view_;
  const std::string path_;
  Grouped<std::string, Attempt> append_;
  int fd_ = -1;  // used by one Append at a time
};

// The connections of one HTTP destination: a keep-alive client per delivery worker, and one
// for the counts of open tickets, so the pool holds `concurrency` + 1 connections at most.
class HttpTransport {
 public:
  static absl::StatusOr<std::unique_ptr<HttpTransport>> Create(
      const config::DestinationOptions& options, asio::any_io_executor executor,
      const storage::Clock& clock) {
    absl::StatusOr<Url> url = ParseUrl(options.url);
    if (!url.ok()) return url.status();
    std::shared_ptr<asio::ssl::context> tls;
    if (url->tls) {
      absl::StatusOr<std::shared_ptr<asio::ssl::context>> context = MakeClientTlsContext(options.ca_file);
      if (!context.ok()) return context.status();
      tls = *std::move(context);
    }
    auto transport = std::unique_ptr<HttpTransport>(new HttpTransport(*std::move(url), *options.type, clock));
    // One per delivery worker, and one for the counts (kCountClient).
    for (int i = 0; i <= options.concurrency; ++i) {
      transport->clients_.push_back(std::make_unique<HttpClient>(
          executor, transport->url_, tls, options.connect_timeout, options.timeout));
    }
    return transport;
  }
  // "https://host" or "http://host:port": the URL's origin as OAuth 1.0a signs it (lower
  // case, the default port left out).
  std::string Origin() const {
    const bool default_port = url_.port.empty() || url_.port == (url_.tls ? "443" : "80");
    return absl::StrCat(url_.tls ? "https://" : "http://", absl::AsciiStrToLower(url_.host),
                        default_port ? "" : ":", default_port ? "" : url_.port);
  }
  // Closes a worker's kept-alive connection: the next request opens a fresh one.
  void Fresh(int worker) { clients_[worker]->Close(); }
  // The connection the counts of open tickets use (CountOpen), besides the workers'.
  int count_client() const { return static_cast<int>(clients_.size()) - 1; }

  // A request to `target` under the URL's path (the whole URL when `target` is empty).
  Request NewRequest(http::verb method, absl::string_view target) const {
    std::string path = url_.target;
    if (!target.empty()) {
      if (!path.empty() && path.back() == '/') path.pop_back();
      path.append(target.data(), target.size());
    }
    Request request{method, path, 11};
    request.set(http::field::content_type, "application/json");
    request.set(http::field::user_agent, "triaged/" TRIAGED_VERSION);
    return request;
  }

  // Sends on the worker's connection; a 2xx answer's body goes to `answer` when given, and the
  // transport's error and stage to `sent`.
  asio::awaitable<Attempt> Send(Request request, int worker, std::string* answer = nullptr,
                                ClientResult* sent = nullptr) {
    ClientResult result = co_await clients_[worker]->Send(std::move(request));
    if (sent != nullptr) {
      sent->error = result.error;
      sent->error_stage = result.error_stage;
    }
    if (result.error) co_return ClassifyTransportError(result.error, result.error_stage);
    Attempt attempt = ClassifyResponse(result.response, clock_.Now());
    ApplyTypeClass(result.response, &attempt);
    if (answer != nullptr && attempt.kind == Attempt::Kind::kDelivered) {
      *answer = std::move(result.response.body());
    }
    co_return attempt;
  }

  const storage::Clock& clock() const { return clock_; }

 private:
  HttpTransport(Url url, const router::DestinationType& type, const storage::Clock& clock)
      : url_(std::move(url)), type_(type), clock_(clock) {}

  // The destination type's own reading of the answer, where it has one.
  void ApplyTypeClass(const Response& response, Attempt* attempt) const {
    const router::HeaderReader header = [&response](absl::string_view name) -> std::optional<std::string> {
      const auto found = response.find(boost::beast::string_view(name.data(), name.size()));
      if (found == response.end()) return std::nullopt;
      return std::string(ToAbsl(found->value()));
    };
    const std::optional<router::AnswerClass> read =
        type_.ClassifyAnswer(attempt->status, response.body(), header, clock_.Now());
    if (!read) return;
    switch (read->kind) {
      case router::AnswerClass::Kind::kDelivered:
        attempt->kind = Attempt::Kind::kDelivered;
        attempt->quota_reset = read->retry_after;
        return;
      case router::AnswerClass::Kind::kRetry:
        attempt->kind = Attempt::Kind::kRetry;
        attempt->retry_after = read->retry_after ? read->retry_after : attempt->retry_after;
        break;
      case router::AnswerClass::Kind::kPermanent:
        attempt->kind = Attempt::Kind::kPermanent;
        break;
    }
    attempt->throttled = read->throttled;
    attempt->reason = read->reason;
    if (!read->detail.empty()) attempt->detail = read->detail;
  }

  const Url url_;
  const router::DestinationType& type_;
  const storage::Clock& clock_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
};

// Every HTTP destination: the request its type renders (router/destinations/<type>/), with the
// type's authorization and signature. A ticket created here is recorded with the ack
// (Attempt::remote_ticket), so follow-ups in its thread go to it, and an acknowledged creation
// is never repeated.
class HttpSender : public Sender {
 public:
  HttpSender(config::DestinationOptions options, std::unique_ptr<HttpTransport> transport,
             router::TicketTemplates templates, std::string signing_key)
      : options_(std::move(options)),
        type_(*options_.type),
        transport_(std::move(transport)),
        templates_(std::move(templates)),
        view_{options_.settings, templates_, options_.group_ids, options_.join_informed, &options_.watchers},
        authorization_(type_.Authorization(options_.settings)),
        signing_(type_.Signing(options_.settings).kind),
        signing_key_(std::move(signing_key)) {
    if (const router::RequestSigning signing = type_.Signing(options_.settings);
        signing.kind == router::RequestSigning::Kind::kOAuth1 && signing.parts.size() == 4) {
      oauth1_ = {signing.parts[0], signing.parts[1], signing.parts[2], signing.parts[3]};
    }
  }

  bool wants_remote_tickets() const override { return type_.keeps_tickets(); }

  asio::awaitable<absl::StatusOr<std::optional<int64_t>>> CountOpen(const std::string& team) override {
    co_return co_await Count(type_.CountOpenRequest(view_, team), team);
  }
  asio::awaitable<absl::StatusOr<std::optional<int64_t>>> CountSolved(const std::string& team) override {
    co_return co_await Count(type_.CountSolvedRequest(view_, team), team);
  }
  bool CountsSolved(const std::string& team) const override {
    return type_.CountSolvedRequest(view_, team).has_value();
  }
  asio::awaitable<absl::StatusOr<std::optional<int64_t>>> Count(std::optional<router::OutboundRequest> request,
                                                                const std::string& team) {
    if (!request) co_return std::optional<int64_t>();
    std::string answer;
    const router::DeliveryContext context{.destination = options_.name, .team = team};
    const Attempt attempt = co_await transport_->Send(Finish(*std::move(request), context),
                                                      transport_->count_client(), &answer);
    if (attempt.kind != Attempt::Kind::kDelivered) co_return absl::UnavailableError(attempt.detail);
    absl::StatusOr<int64_t> count = type_.OpenCount(answer);
    if (!count.ok()) co_return count.status();
    co_return std::optional<int64_t>(*count);
  }

  // Up to three requests: the lookup of a ticket an earlier attempt may have created, the
  // customer as the helpdesk's requester, then the ticket or the follow-up.
  // GCC 12 reports asio's coroutine frame delete as mismatched with its new here (the false
  // positive Ingest::RouteAndStore has too); nothing is mismatched.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
  asio::awaitable<Attempt> Send(const storage::Lease& lease, const Known& known, int worker) override {
    Delivery delivery{Context(options_, lease, known), std::nullopt};
    if (absl::Status read = ReadTicket(lease, &delivery); !read.ok()) {
      co_return Attempt{Attempt::Kind::kPermanent, std::string(read.message())};
    }
    if (known.reply_text && !type_.keeps_tickets()) co_return co_await SendReply(delivery, worker);
    const bool creating = type_.keeps_tickets() && !known.thread_ticket;
    std::optional<router::OutboundRequest> lookup;
    if (creating && type_.LookUpBeforeCreating(absl::FromUnixMillis(lease.entry.enqueued_unix_ms),
                                               lease.entry.attempts, transport_->clock().Now())) {
      lookup = type_.LookupRequest(view_, delivery.context);
    }
    int requests = 0;  // before the last one
    if (lookup) {
      std::string found;
      Attempt attempt = co_await transport_->Send(Finish(*std::move(lookup), delivery.context), worker, &found);
      if (attempt.kind != Attempt::Kind::kDelivered || TakeFoundTicket(found, &attempt)) co_return attempt;
      ++requests;
    }
    std::optional<router::OutboundRequest> requester;
    if (creating && delivery.ticket) requester = type_.RequesterRequest(view_, *delivery.ticket, delivery.context);
    if (requester) {
      std::string answer;
      Attempt attempt = co_await transport_->Send(Finish(*std::move(requester), delivery.context), worker, &answer);
      attempt.requests += requests++;
      // Retried as a whole; credentials the helpdesk refuses fail the ticket too.
      if (attempt.kind == Attempt::Kind::kRetry || attempt.status == 401 || attempt.status == 403) co_return attempt;
      TakeRequester(answer, attempt, &delivery.context);
    }
    absl::StatusOr<router::OutboundRequest> out = Render(delivery);
    if (!out.ok()) co_return Attempt{Attempt::Kind::kPermanent, std::string(out.status().message())};
    for (router::OutboundRequest& before : out->first) {
      Attempt attempt = co_await transport_->Send(Finish(std::move(before), delivery.context), worker);
      attempt.requests += requests++;
      if (attempt.kind != Attempt::Kind::kDelivered) co_return attempt;
    }
    const bool creates_ticket = out->creates_ticket;
    std::string answer;
    Attempt attempt = co_await transport_->Send(Finish(*std::move(out), delivery.context), worker, &answer);
    attempt.requests += requests;
    if (creates_ticket) TakeTicketId(answer, &attempt);
    if (attempt.kind == Attempt::Kind::kDelivered && delivery.context.Escalates()) {
      attempt.remote_ticket = *delivery.context.remote_ticket;  // recorded at its new level and team
    }
    co_return attempt;
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

 private:
  struct Delivery {
    router::DeliveryContext context;
    std::optional<router::TicketView> ticket;  // when the type reads tickets
  };

  // An acknowledgement: one request, which no platform deduplicates. An answer lost after the
  // request was written may mean it was sent, so it is final ("unknown"), never repeated; a
  // failure to connect is retried. The platform's id of the reply (else the delivery id) is
  // recorded as the conversation's last acknowledgement.
  asio::awaitable<Attempt> SendReply(const Delivery& delivery, int worker) {
    absl::StatusOr<router::OutboundRequest> out = Render(delivery);
    if (!out.ok()) co_return Attempt{Attempt::Kind::kPermanent, std::string(out.status().message())};
    std::string answer;
    ClientResult sent;
    // On a fresh connection: one the server closed while idle would fail after the write, which
    // cannot be told from a lost answer.
    transport_->Fresh(worker);
    Attempt attempt = co_await transport_->Send(Finish(*std::move(out), delivery.context), worker, &answer, &sent);
    if (sent.error && (sent.error_stage == "write" || sent.error_stage == "read")) {
      attempt.kind = Attempt::Kind::kPermanent;
      attempt.reason = "unknown";
      attempt.detail = absl::StrCat("the answer was lost (", attempt.detail,
                                    "): it may have been sent, and is not sent again");
    }
    if (attempt.kind != Attempt::Kind::kDelivered) co_return attempt;
    // The platform's id of the reply; without one (a webhook), the dispatcher records the
    // delivery id.
    if (absl::StatusOr<std::string> id = type_.ReplyId(answer); id.ok()) attempt.remote_ticket = *std::move(id);
    co_return attempt;
  }

  absl::Status ReadTicket(const storage::Lease& lease, Delivery* delivery) const {
    if (!type_.reads_tickets()) return absl::OkStatus();
    absl::StatusOr<router::TicketView> parsed = router::ParseTicketView(lease.entry.ticket_json);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("stored ticket unreadable: ", parsed.status().message()));
    }
    delivery->ticket = *std::move(parsed);
    return absl::OkStatus();
  }

  // The helpdesk named the customer: the ticket's requester. A refusal (an identity another
  // user holds, a field the account lacks) must not lose the ticket: it is created with the
  // helpdesk's default requester, and the refusal is logged.
  void TakeRequester(const std::string& answer, const Attempt& attempt, router::DeliveryContext* context) const {
    if (attempt.kind == Attempt::Kind::kDelivered) {
      absl::StatusOr<std::string> id = type_.RequesterId(answer);
      if (id.ok()) {
        context->requester_id = *std::move(id);
        return;
      }
      spdlog::warn("event=requester_unreadable destination={} detail=\"{}\"", options_.name, Snippet(answer));
      return;
    }
    spdlog::warn("event=requester_refused destination={} detail=\"{}\" note=\"ticket created without it\"",
                 options_.name, attempt.detail);
  }

  absl::StatusOr<router::OutboundRequest> Render(const Delivery& delivery) const {
    return type_.Render(view_, delivery.ticket ? &*delivery.ticket : nullptr, delivery.context);
  }

  // A lookup found the ticket an earlier attempt created: the delivery is done. A lookup
  // that cannot be read is retried. False when no ticket was found: go on and create it.
  bool TakeFoundTicket(const std::string& answer, Attempt* lookup) const {
    absl::StatusOr<std::optional<std::string>> found = type_.FoundTicketId(answer);
    if (!found.ok()) {
      *lookup = Attempt{Attempt::Kind::kRetry, absl::StrCat("ticket lookup: ", found.status().message())};
      return true;
    }
    if (!found->has_value()) return false;
    lookup->detail = "found by lookup";
    lookup->remote_ticket = **found;
    lookup->ticket_created = true;
    return true;
  }

  // Method, target, auth, headers and signature of a rendered request.
  Request Finish(router::OutboundRequest out, const router::DeliveryContext& context) const {
    Request request = transport_->NewRequest(Verb(out.method), out.target);
    if (!authorization_.empty()) request.set(http::field::authorization, authorization_);
    for (const auto& [name, value] : out.headers) request.set(name, value);
    request.body() = std::move(out.body);
    switch (signing_) {
      case router::RequestSigning::Kind::kNone:
        break;
      case router::RequestSigning::Kind::kStandardWebhooks: {
        const int64_t timestamp = absl::ToUnixSeconds(transport_->clock().Now());
        request.set("webhook-id", context.delivery_id);
        request.set("webhook-timestamp", std::to_string(timestamp));
        request.set("webhook-signature",
                    StandardWebhooksSignature(signing_key_, context.delivery_id, timestamp, request.body()));
        break;
      }
      case router::RequestSigning::Kind::kAppSecretProof: {
        std::string target(request.target());
        absl::StrAppend(&target, target.find('?') == std::string::npos ? "?" : "&", "appsecret_proof=", signing_key_);
        request.target(target);
        break;
      }
      case router::RequestSigning::Kind::kOAuth1: {
        const absl::string_view target = ToAbsl(request.target());
        const size_t query = target.find('?');
        std::vector<std::pair<std::string, std::string>> params;
        if (query != absl::string_view::npos) {
          for (absl::string_view pair : absl::StrSplit(target.substr(query + 1), '&', absl::SkipEmpty())) {
            const size_t eq = pair.find('=');
            const absl::string_view value = eq == absl::string_view::npos ? "" : pair.substr(eq + 1);
            params.emplace_back(PercentDecode(pair.substr(0, eq), false).value_or(std::string(pair.substr(0, eq))),
                                PercentDecode(value, false).value_or(std::string(value)));
          }
        }
        request.set(http::field::authorization,
                    OAuth1Authorization(ToAbsl(request.method_string()),
                                        absl::StrCat(transport_->Origin(), target.substr(0, query)), params, oauth1_,
                                        RandomHex(16), absl::ToUnixSeconds(transport_->clock().Now())));
        break;
      }
    }
    return request;
  }

  static http::verb Verb(router::HttpMethod method) {
    switch (method) {
      case router::HttpMethod::kGet:
        return http::verb::get;
      case router::HttpMethod::kPost:
        return http::verb::post;
      case router::HttpMethod::kPut:
        return http::verb::put;
      case router::HttpMethod::kPatch:
        return http::verb::patch;
    }
    return http::verb::post;  // unreachable: the switch names every method
  }

  void TakeTicketId(const std::string& answer, Attempt* attempt) const {
    if (attempt->kind != Attempt::Kind::kDelivered) return;
    absl::StatusOr<std::string> id = type_.CreatedTicketId(answer);
    if (id.ok()) {
      attempt->remote_ticket = *std::move(id);
      attempt->ticket_created = true;
    } else {
      // Created, but follow-ups cannot find it: they will open tickets of their own.
      spdlog::warn("event=ticket_id_missing destination={} detail=\"{}\"", options_.name, Snippet(answer));
    }
  }

  const config::DestinationOptions options_;
  const router::DestinationType& type_;
  std::unique_ptr<HttpTransport> transport_;
  const router::TicketTemplates templates_;
  const router::DestinationView view_;
  const std::string authorization_;
  const router::RequestSigning::Kind signing_;
  const std::string signing_key_;  // the decoded Standard Webhooks key, or the appsecret_proof
  OAuth1Credentials oauth1_;       // kOAuth1
};

// "0" in any of the headers helpdesks use for the requests left in the current window.
bool QuotaSpent(const Response& response) {
  for (const char* name : {"X-Rate-Limit-Remaining", "X-RateLimit-Remaining", "ratelimit-remaining"}) {
    const auto header = response.find(name);
    if (header != response.end() && ToAbsl(header->value()) == "0") return true;
  }
  return false;
}

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
  attempt.status = status;
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
  attempt.throttled = status == 429;
  if (attempt.kind == Attempt::Kind::kDelivered && QuotaSpent(response)) {
    for (const char* name : {"ratelimit-reset", "Retry-After"}) {
      if (const auto header = response.find(name); header != response.end()) {
        attempt.quota_reset = ParseRetryAfter(ToAbsl(header->value()), now);
        if (attempt.quota_reset) break;
      }
    }
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

absl::StatusOr<std::unique_ptr<Sender>> MakeSender(const config::DestinationOptions& options,
                                                   asio::any_io_executor executor, BlockingPool& pool,
                                                   const storage::Clock& clock) {
  const router::DestinationType& type = *options.type;
  switch (type.transport()) {
    case router::Transport::kFile:
      return std::make_unique<FileSender>(options, pool);
    case router::Transport::kHttp:
      break;
  }
  absl::StatusOr<std::unique_ptr<HttpTransport>> transport = HttpTransport::Create(options, executor, clock);
  if (!transport.ok()) return transport.status();
  std::string signing_key;
  const router::RequestSigning signing = type.Signing(options.settings);
  switch (signing.kind) {
    case router::RequestSigning::Kind::kNone:
      break;
    case router::RequestSigning::Kind::kStandardWebhooks: {
      absl::StatusOr<std::string> key = StandardWebhooksKey(signing.key);
      if (!key.ok()) return key.status();
      signing_key = *std::move(key);
      break;
    }
    case router::RequestSigning::Kind::kAppSecretProof:  // the same for every request
      signing_key = absl::BytesToHexString(HmacSha256(signing.key, signing.subject));
      break;
    case router::RequestSigning::Kind::kOAuth1:  // signed per request (HttpSender::Finish)
      break;
  }
  absl::StatusOr<router::TicketTemplates> templates = router::CompileTemplates(
      options.subject_template, options.body_template, options.follow_up_template, options.custom_fields, type, options.settings);
  if (!templates.ok()) return templates.status();
  return std::make_unique<HttpSender>(options, *std::move(transport), *std::move(templates),
                                      std::move(signing_key));
}

namespace {

// The breaker's pause is a failing destination's wait too: capped at probe_max.
config::BreakerOptions CappedBreaker(const config::DestinationOptions& options) {
  config::BreakerOptions breaker = options.breaker;
  breaker.open_for = std::min(breaker.open_for, options.probe_max);
  breaker.open_max = std::min(breaker.open_max, options.probe_max);
  return breaker;
}

}  // namespace

Dispatcher::Dispatcher(asio::io_context& io, storage::Store& store, BlockingPool& pool,
                       const storage::Clock& clock, config::DestinationOptions options,
                       std::unique_ptr<Sender> sender, Metrics& metrics, Acknowledger* acknowledger)
    : store_(store),
      pool_(pool),
      clock_(clock),
      options_(std::move(options)),
      sender_(std::move(sender)),
      metrics_(metrics),
      acknowledger_(acknowledger),
      labels_{{"destination", options_.name}},
      paused_gauge_(metrics.destination_paused.Add(labels_)),
      in_flight_gauge_(metrics.delivery_in_flight.Add(labels_)),
      breaker_gauge_(metrics.breaker_state.Add(labels_)),
      rate_limit_waits_(metrics.rate_limit_waits.Add(labels_)),
      strand_(asio::make_strand(io)),
      streak_(options_.backoff_initial, options_.probe_max, options_.retry_after_max),
      bucket_(options_.rate, options_.burst, clock_.Now()),
      breaker_(CappedBreaker(options_)),
      leases_(pool,
              [this](std::vector<absl::Time>& nows) {
                std::vector<storage::Lease> leased =
                    store_.LeaseBatch(options_.name, *std::max_element(nows.begin(), nows.end()), nows.size());
                std::vector<std::optional<storage::Lease>> each(nows.size());
                for (size_t i = 0; i < leased.size(); ++i) each[i] = std::move(leased[i]);
                return each;
              }),
      acks_(pool, [this](std::vector<const storage::Lease*>& leases) {
        return std::vector<absl::Status>(leases.size(), store_.AckBatch(leases));
      }) {
  // One per worker, and the count loop's last.
  for (int i = 0; i <= options_.concurrency; ++i) {
    timers_.push_back(std::make_unique<asio::steady_timer>(strand_));
  }
}

asio::awaitable<absl::StatusOr<std::optional<int64_t>>> Sender::CountOpen(const std::string&) {
  co_return std::optional<int64_t>();
}

asio::awaitable<absl::StatusOr<std::optional<int64_t>>> Sender::CountSolved(const std::string&) {
  co_return std::optional<int64_t>();
}

void Dispatcher::Start() {
  ++running_;
  asio::co_spawn(strand_, Run(), [this, self = shared_from_this()](std::exception_ptr e) { Ended(e); });
}

void Dispatcher::Ended(std::exception_ptr e) {
  if (--running_ == 0 && removed_) {
    paused_gauge_.Set(0);
    breaker_gauge_.Set(0);
  }
  if (e) {
    spdlog::error("event=delivery_worker_failed destination={} error=\"{}\"", options_.name,
                  ExceptionMessage(e));
  }
}

template <typename Op>
asio::awaitable<std::invoke_result_t<Op&>> Dispatcher::UntilStored(Op op, const char* what) {
  auto result = co_await pool_.Run(op);
  if (result.ok()) co_return result;
  asio::steady_timer wait(strand_);
  const std::string first_error(result.status().message());
  spdlog::error("event=delivery_store_failed destination={} operation={} error=\"{}\"", options_.name,
                what, first_error);
  while (!result.ok() && !stopping_) {
    wait.expires_after(ToChrono(kStorageWait));
    co_await wait.async_wait(as_tuple(use_awaitable));
    if (store_.Available()) result = co_await pool_.Run(op);
  }
  if (result.ok()) spdlog::info("event=delivery_store_resumed destination={} operation={}", options_.name, what);
  co_return result;
}

asio::awaitable<void> Dispatcher::Run() {
  // A Retry-After still running from before a restart, or an operator's pause, holds the
  // destination as it did: nothing is sent until both have been read.
  const uint64_t changes = manual_pause_changes_;
  const auto pauses = co_await UntilStored(
      [this]() -> absl::StatusOr<std::pair<absl::Time, bool>> {
        absl::StatusOr<absl::Time> until = store_.DestinationPause(options_.name);
        if (!until.ok()) return until.status();
        absl::StatusOr<bool> manual = store_.ManualPause(options_.name);
        if (!manual.ok()) return manual.status();
        return std::pair(*until, *manual);
      },
      "read_pauses");
  if (!pauses.ok()) co_return;  // stopped first
  paused_until_ = std::max(paused_until_, pauses->first);
  if (changes == manual_pause_changes_) manual_pause_ = pauses->second;
  manual_pause_seen_ = manual_pause_;
  PublishPause(clock_.Now());
  PublishBreaker();
  for (int i = 0; i < options_.concurrency && !stopping_; ++i) {
    ++running_;
    asio::co_spawn(strand_, Worker(i), [this, self = shared_from_this()](std::exception_ptr e) { Ended(e); });
  }
  if (options_.count_interval > absl::ZeroDuration() && !options_.teams.empty() && !stopping_) {
    ++running_;
    asio::co_spawn(strand_, CountLoop(), [this, self = shared_from_this()](std::exception_ptr e) { Ended(e); });
  }
}

asio::awaitable<void> Dispatcher::CountLoop() {
  asio::steady_timer& timer = *timers_.back();
  absl::Time next_round = clock_.Now();
  size_t next_team = 0;
  bool solved_step = false;  // each team: its open tickets, then (where the helpdesk tells) those solved
  while (!stopping_) {
    const absl::Time now = clock_.Now();
    const std::string& team = options_.teams[next_team];
    if (solved_step && !sender_->CountsSolved(team)) {
      solved_step = false;
      if (++next_team == options_.teams.size()) {
        next_team = 0;
        next_round = std::max(next_round + options_.count_interval, now);
      }
      continue;
    }
    // The next thing to do: the next round, the end of a pause (a failing or paused helpdesk
    // is not asked for counts), or a token.
    absl::Time wake_at = next_round;
    if (now >= next_round) {
      const absl::Time gate =
          manual_pause_ || probing_ ? absl::InfiniteFuture() : std::max(paused_until_, breaker_.Admits(now));
      const absl::Time token = bucket_.Available(now);
      if (gate > now) {
        wake_at = gate == absl::InfiniteFuture() ? now + options_.count_interval : gate;
      } else if (token > now) {
        wake_at = token;
      } else if (store_.NextDue(options_.name) <= now) {
        wake_at = now + kCountYield;  // deliveries first: the token is theirs
      } else {
        bucket_.Take(now);
        absl::StatusOr<std::optional<int64_t>> count = std::optional<int64_t>();
        if (solved_step) {
          count = co_await sender_->CountSolved(team);
        } else {
          count = co_await sender_->CountOpen(team);
        }
        if (!count.ok()) {
          spdlog::warn("event=count_failed destination={} team={} what={} error=\"{}\"", options_.name, team,
                       solved_step ? "solved" : "open", std::string(count.status().message()));
        } else if (*count) {
          const absl::Time at = clock_.Now();
          const prometheus::Labels labels{{"destination", options_.name}, {"team", team}};
          {
            absl::MutexLock lock(&counts_mu_);
            OpenCount& kept = counts_[team];
            if (solved_step) {
              kept.solved_last_hour = **count;
            } else {
              kept.count = **count;
              kept.counted_at = at;
            }
          }
          if (solved_step) {
            metrics_.helpdesk_solved.Add(labels).Set(static_cast<double>(**count));
          } else {
            metrics_.helpdesk_open.Add(labels).Set(static_cast<double>(**count));
            metrics_.helpdesk_open_counted.Add(labels).Set(absl::ToDoubleSeconds(at - absl::UnixEpoch()));
          }
        }
        if (!solved_step) {
          solved_step = true;
        } else {
          solved_step = false;
          if (++next_team == options_.teams.size()) {
            next_team = 0;
            next_round = std::max(next_round + options_.count_interval, clock_.Now());
          }
        }
        continue;
      }
    }
    timer.expires_after(ToChrono(std::max(absl::ZeroDuration(), wake_at - now)));
    co_await timer.async_wait(as_tuple(use_awaitable));
  }
}

std::optional<Dispatcher::OpenCount> Dispatcher::OpenTickets(const std::string& team) const {
  absl::MutexLock lock(&counts_mu_);
  const auto found = counts_.find(team);
  if (found == counts_.end()) return std::nullopt;
  return found->second;
}

void Dispatcher::Wake(size_t entries) {
  asio::post(strand_, [self = shared_from_this(), entries] { self->WakeIdle(entries); });
}

void Dispatcher::WakeAll() {
  ++wake_generation_;
  idle_.clear();
  for (auto& timer : timers_) timer->cancel();
}

void Dispatcher::WakeIdle(size_t workers) {
  ++wake_generation_;  // a worker about to sleep looks again
  // The latest to sleep first: its frame is the warmest.
  for (; workers > 0 && !idle_.empty(); --workers) {
    timers_[idle_.back()]->cancel();
    idle_.pop_back();
  }
}

void Dispatcher::Stop(bool removed) {
  if (removed) removed_ = true;
  asio::post(strand_, [self = shared_from_this()] {
    self->stopping_ = true;
    for (auto& timer : self->timers_) timer->cancel();
  });
}

void Dispatcher::PublishBreaker() {
  if (stopping_) return;  // a dispatcher replaced by a reload leaves the gauges to the new one
  breaker_gauge_.Set(static_cast<double>(breaker_.state()));
  breaker_seen_ = static_cast<int>(breaker_.state());
}

void Dispatcher::PublishPause(absl::Time now) {
  if (stopping_) return;
  paused_gauge_.Set(manual_pause_ || now < paused_until_ ? 1 : 0);
  paused_until_ms_ = paused_until_ == absl::InfinitePast() ? 0 : absl::ToUnixMillis(paused_until_);
}

absl::Status Dispatcher::SetManualPause(bool paused) {
  if (auto s = store_.SetManualPause(options_.name, paused); !s.ok()) return s;
  manual_pause_seen_ = paused;
  asio::post(strand_, [self = shared_from_this(), paused] {
    self->manual_pause_ = paused;
    ++self->manual_pause_changes_;
    self->PublishPause(self->clock_.Now());
    self->WakeAll();
  });
  spdlog::warn("event=destination_{} destination={} by=admin", paused ? "paused" : "resumed", options_.name);
  return absl::OkStatus();
}

Dispatcher::Status Dispatcher::status() const {
  Status s;
  s.manual_pause = manual_pause_seen_;
  const int64_t until = paused_until_ms_;
  s.paused_until = until == 0 ? absl::InfinitePast() : absl::FromUnixMillis(until);
  s.breaker = static_cast<CircuitBreaker::State>(breaker_seen_.load());
  return s;
}

asio::awaitable<void> Dispatcher::Worker(int index) {
  asio::steady_timer& timer = *timers_[index];
  while (!stopping_) {
    const absl::Time now = clock_.Now();
    const uint64_t generation = wake_generation_;
    // A failing destination sends one attempt at a time (woken when it ends).
    const absl::Time gate = manual_pause_ || probing_
                                ? absl::InfiniteFuture()
                                : std::max(paused_until_, breaker_.Admits(now));
    PublishBreaker();  // Admits may have turned open into half-open
    PublishPause(now);
    const bool failing = streak_.streak() > 0 || breaker_.state() != CircuitBreaker::State::kClosed;
    absl::Time wake_at;
    if (gate > now) {
      wake_at = gate;
    } else if (!store_.Available()) {
      // Nothing could be recorded: deliver nothing until storage is back (its writer resumes
      // it every second).
      wake_at = now + kStorageWait;
    } else if (const absl::Time due = store_.NextDue(options_.name);
               due > now && !(failing && due != absl::InfiniteFuture())) {
      wake_at = due;  // nothing to send (a failing destination probes with what is in back-off)
    } else if (const absl::Time token = bucket_.Available(now); token > now) {
      rate_limit_waits_.Increment();
      wake_at = token;
    } else {
      // The token and the breaker's ticket are taken before the lease (a RocksDB read on the
      // pool), so no other worker passes the same gates meanwhile; given back if nothing came.
      bucket_.Take(now);
      const Tickets tickets{breaker_.Start(), streak_.Start()};
      probing_ = failing;
      // A failing destination probes alone; otherwise the workers lease in groups.
      std::optional<storage::Lease> lease;
      if (failing) {
        lease = co_await pool_.Run([this, now] { return store_.LeaseNext(options_.name, now, true); });
      } else {
        lease = co_await leases_.Call(now);
      }
      if (lease) {
        // More may be due than the workers that were woken: pass it on.
        if (!idle_.empty() && store_.NextDue(options_.name) <= now) WakeIdle(1);
        co_await Deliver(*std::move(lease), index, tickets);
      } else {
        breaker_.Cancel(tickets.breaker);
        bucket_.Return();
      }
      if (probing_) {
        probing_ = false;
        WakeAll();
      }
      continue;
    }
    if (generation != wake_generation_) continue;  // woken while looking: look again
    if (wake_at == absl::InfiniteFuture()) {
      timer.expires_at(asio::steady_timer::time_point::max());
    } else {
      timer.expires_after(ToChrono(std::max(absl::ZeroDuration(), wake_at - now)));
    }
    idle_.push_back(index);
    co_await timer.async_wait(as_tuple(use_awaitable));
    // Woken by its time or by WakeAll rather than WakeIdle: no longer idle.
    if (const auto it = std::find(idle_.begin(), idle_.end(), index); it != idle_.end()) idle_.erase(it);
  }
}

void Dispatcher::CountReply(const std::string& platform, absl::string_view outcome) {
  metrics_.acknowledgements
      .Add({{"destination", options_.name}, {"platform", platform.empty() ? "unknown" : platform},
            {"outcome", std::string(outcome)}})
      .Increment();
}

asio::awaitable<bool> Dispatcher::PrepareReply(const storage::Lease& lease, Known* known, std::string* platform) {
  absl::StatusOr<std::optional<storage::ThreadTicket>> last = co_await UntilStored(
      [this, &lease] { return store_.FindThreadTicket(lease); }, "read_last_acknowledgement");
  if (!last.ok()) {  // stopped first: the entry goes back, untouched
    (void)store_.Return(lease);
    co_return false;
  }
  const absl::Time now = clock_.Now();
  Acknowledger::Plan plan;
  if (acknowledger_ != nullptr) {
    plan = co_await pool_.Run([this, &lease, &last, now] { return acknowledger_->Compose(lease, *last, now); });
  } else {
    plan.skipped = "off";
    plan.detail = "acknowledgements are not configured";
  }
  *platform = plan.platform;
  std::string outcome, detail;
  bool dead = true;
  if (absl::StartsWith(lease.entry.last_error, kSendingNote)) {
    // Marked before a send whose outcome was never recorded (a crash, a kill -9): it may have
    // been sent, and no platform deduplicates a second one.
    outcome = "unknown";
    detail = "its send was under way at a restart: it may have been sent, and is not sent again";
  } else if (!plan.text) {
    outcome = plan.skipped;
    detail = plan.detail;
    if (outcome != "unreadable") {
      dead = false;  // settled: nothing to send, and the delivery record says why
      detail = absl::StrCat("not sent (", outcome, "): ", detail);
    }
  } else {
    // Recorded before it goes: a restart that finds the mark does not send it again.
    auto mark = [this, &lease]() -> absl::StatusOr<bool> {
      absl::Status s = store_.MarkSending(lease, kSendingNote);
      if (!s.ok()) return s;
      return true;
    };
    if (!(co_await UntilStored(mark, "mark_sending")).ok()) {
      (void)store_.Return(lease);
      co_return false;
    }
    known->reply_text = *std::move(plan.text);
    co_return true;
  }
  co_await Settle(lease, dead, detail, "settle_acknowledgement");
  spdlog::info("event=acknowledgement_not_sent destination={} team={} outcome={} detail=\"{}\"", options_.name,
               lease.entry.team, outcome, detail);
  CountReply(*platform, outcome);
  co_return false;
}

asio::awaitable<void> Dispatcher::Settle(const storage::Lease& lease, bool dead, const std::string& note,
                                         const char* what) {
  auto record = [this, &lease, dead, &note]() -> absl::StatusOr<bool> {
    absl::Status s = dead ? store_.DeadLetter(lease, note) : store_.Ack(lease, "", false, note);
    if (!s.ok()) return s;
    return true;
  };
  (void)co_await UntilStored(record, what);
}

asio::awaitable<bool> Dispatcher::PrepareReplyNote(const storage::Lease& lease, Known* known) {
  storage::Lease ticket_lease = lease;
  ticket_lease.entry.reply = false;  // the thread's ticket, not an acknowledgement record
  absl::StatusOr<std::optional<storage::ThreadTicket>> ticket = co_await UntilStored(
      [this, &ticket_lease] { return store_.FindThreadTicket(ticket_lease); }, "read_remote_ticket");
  if (!ticket.ok()) {
    (void)store_.Return(lease);
    co_return false;
  }
  if (!ticket->has_value()) {
    co_await Settle(lease, false, "no ticket here to note the acknowledgement on", "settle_reply_note");
    co_return false;
  }
  // How the acknowledgement went, at its reply destination.
  const std::vector<storage::MessageDelivery> deliveries =
      co_await pool_.Run([this, &lease] { return store_.Deliveries(lease.entry.message_key); });
  const auto reply = std::find_if(deliveries.begin(), deliveries.end(), [&](const storage::MessageDelivery& d) {
    return d.entry.reply && d.destination != options_.name;
  });
  const absl::Time now = clock_.Now();
  std::string note;
  if (reply != deliveries.end() && reply->state == "delivered" && !reply->remote_ticket.empty()) {
    note = absl::StrCat("Acknowledged to the customer through ", reply->destination, " at ",
                        absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", reply->delivered_at, absl::UTCTimeZone()), " (",
                        reply->remote_ticket, "):\n", reply->text);
  } else if (reply != deliveries.end() && reply->state == "dead_letter") {
    note = absl::StrCat("The customer could not be acknowledged through ", reply->destination, ": ",
                        reply->entry.last_error);
  } else if (reply != deliveries.end() && reply->state != "delivered" &&
             now < absl::FromUnixMillis(lease.entry.enqueued_unix_ms) + kReplyNoteWait) {
    // The acknowledgement is on its way: look again soon, without an attempt or a token (the
    // thread's later notes wait behind this one, so not for long).
    const absl::Time due = now + kLinkPoll;
    (void)co_await pool_.Run([this, &lease, due, &reply] {
      return store_.Postpone(lease, due, absl::StrCat("waiting for the acknowledgement at ", reply->destination));
    });
    co_return false;
  } else {
    co_await Settle(lease, false, "no acknowledgement was sent to note", "settle_reply_note");
    co_return false;
  }
  known->thread_ticket = **std::move(ticket);
  known->reply_text = std::move(note);
  co_return true;
}

asio::awaitable<void> Dispatcher::Deliver(storage::Lease lease, int index, Tickets tickets) {
  Known known;
  std::string platform;  // a reply's
  const bool reply_note = lease.entry.reply && sender_->wants_remote_tickets();  // at a helpdesk
  if (reply_note) {
    if (!co_await PrepareReplyNote(lease, &known)) {
      breaker_.Cancel(tickets.breaker);
      bucket_.Return();
      co_return;
    }
  } else if (lease.entry.reply) {
    if (!co_await PrepareReply(lease, &known, &platform)) {
      breaker_.Cancel(tickets.breaker);
      bucket_.Return();
      co_return;
    }
  } else if (sender_->wants_remote_tickets()) {
    // Unreadable is not "none": that would open a second ticket. Wait for storage.
    absl::StatusOr<std::optional<storage::ThreadTicket>> read =
        co_await UntilStored([this, &lease] { return store_.FindThreadTicket(lease); }, "read_remote_ticket");
    if (!read.ok()) {  // stopped first: the entry goes back, untouched
      breaker_.Cancel(tickets.breaker);
      (void)store_.Return(lease);
      co_return;
    }
    known.thread_ticket = *std::move(read);
  }
  if (options_.ticket_link && !lease.entry.reply) {
    const config::TicketLink& link = *options_.ticket_link;
    absl::StatusOr<std::optional<storage::ThreadTicket>> linked = co_await UntilStored(
        [this, &lease, &link] { return store_.FindThreadTicket(link.destination, true, "", lease.entry.thread); },
        "read_linked_ticket");
    if (!linked.ok()) {
      breaker_.Cancel(tickets.breaker);
      (void)store_.Return(lease);
      co_return;
    }
    const absl::Time now = clock_.Now();
    const absl::Time give_up = absl::FromUnixMillis(lease.entry.enqueued_unix_ms) + options_.ticket_link_wait;
    if (*linked) {
      known.linked_ticket_url = link.type->TicketUrl(link.settings, link.url, (*linked)->id).value_or("");
    } else if (link.teams.contains(lease.entry.team) && now < give_up) {
      // Its ticket is on the way: look again soon, without spending an attempt or a token.
      breaker_.Cancel(tickets.breaker);
      bucket_.Return();
      const absl::Time due = std::min(now + kLinkPoll, give_up);
      const std::string note = absl::StrCat("waiting for its ticket at ", link.destination);
      if (absl::Status s = co_await pool_.Run([this, &lease, due, &note] { return store_.Postpone(lease, due, note); });
          !s.ok()) {
        spdlog::error("event=delivery_store_failed destination={} operation=postpone error=\"{}\"", options_.name,
                      std::string(s.message()));
      }
      metrics_.delivery_attempts.Add({{"destination", options_.name}, {"outcome", "waiting_for_ticket"}}).Increment();
      co_return;
    }
  }
  const absl::Time start = clock_.Now();
  in_flight_gauge_.Increment();
  const Attempt attempt = co_await sender_->Send(lease, known, index);
  in_flight_gauge_.Decrement();
  const absl::Time end = clock_.Now();
  metrics_.attempt_latency.Add(labels_, Buckets()).Observe(absl::ToDoubleSeconds(end - start));
  // The gate took one token; a lookup or a requester before the request cost more.
  if (attempt.requests > 1) bucket_.Charge(attempt.requests - 1, end);

  const bool helpdesk_failed = attempt.kind == Attempt::Kind::kRetry && !attempt.throttled;
  if (breaker_.Record(tickets.breaker, helpdesk_failed, end)) {
    PublishBreaker();
    spdlog::warn("event=breaker destination={} state={}", options_.name,
                 breaker_.state() == CircuitBreaker::State::kClosed ? "closed" : "open");
    WakeAll();  // closed: everyone may send; open: everyone waits for the new gate
  }

  const char* outcome = "delivered";
  // How the outcome is recorded (on the pool). `must_record`: before anything else leaves (an
  // ack, a dead letter), so it is retried until storage takes it; a retry's failed write only
  // costs an earlier attempt.
  std::function<absl::Status()> record;
  bool must_record = false;
  bool plain_ack = false;  // delivered with nothing to record but the delivery: acked in a group
  switch (attempt.kind) {
    case Attempt::Kind::kDelivered:
      streak_.Succeeded();
      if (acknowledger_ != nullptr && lease.entry.owner && !lease.entry.reply) {
        acknowledger_->Delivered(options_.name, lease.entry.team, end);
      }
      record = [this, &lease, &attempt, &known, reply_note] {
        // A reply is recorded as the conversation's last acknowledgement: by the platform's
        // id, else the delivery id (a file line, a webhook).
        if (reply_note) return store_.Ack(lease);  // the ticket stays as it was recorded
        const std::string reply_id = lease.entry.reply && attempt.remote_ticket.empty()
                                         ? DeliveryId(options_.name, lease.entry.message_key, lease.entry.team)
                                         : attempt.remote_ticket;
        return store_.Ack(lease, reply_id, attempt.ticket_created, known.reply_text.value_or(""));
      };
      must_record = true;
      plain_ack = reply_note || (!lease.entry.reply && attempt.remote_ticket.empty());
      if (attempt.quota_reset) {
        paused_until_ = std::max(paused_until_, end + std::min(*attempt.quota_reset, options_.retry_after_max));
      }
      metrics_.delivery_latency.Add(labels_, BacklogBuckets())
          .Observe(absl::ToDoubleSeconds(end - absl::FromUnixMillis(lease.entry.enqueued_unix_ms)));
      if (lease.entry.owner && lease.entry.sla_deadline_unix_ms != 0) {
        metrics_.delivery_sla
            .Add({{"destination", options_.name},
                  {"level", std::string(router::LevelName(lease.entry.level))},
                  {"outcome", end <= absl::FromUnixMillis(lease.entry.sla_deadline_unix_ms) ? "met" : "breached"}})
            .Increment();
      }
      break;
    case Attempt::Kind::kRetry: {
      // The destination as a whole waits: exponential in its failure streak up to probe_max,
      // at least the Retry-After it asked for.
      const bool already_failing = streak_.streak() > 0;
      paused_until_ = std::max(paused_until_, end + streak_.Failed(tickets.streak, attempt.retry_after, random_));
      if (lease.early || already_failing) {
        outcome = attempt.throttled ? "throttled" : "retry";
        // The destination was failing already, or this was a probe ahead of the entry's
        // back-off: the failure is the destination's. The entry keeps its place, its own
        // schedule and its attempt count, so an outage of any length neither dead-letters
        // the backlog nor pushes it back by hours.
        record = [this, &lease] { return store_.Return(lease); };
        if (lease.entry.reply) {
          // Its mark (MarkSending) is cleared: the failure was certain, it may go again.
          record = [this, &lease, &attempt] {
            return store_.Postpone(lease, absl::FromUnixMillis(lease.entry.next_attempt_unix_ms), attempt.detail);
          };
        }
      } else if (lease.entry.attempts + 1 >= static_cast<uint32_t>(options_.max_attempts)) {
        outcome = "dead_letter";
        record = [this, &lease, error = absl::StrCat("gave up after ", options_.max_attempts,
                                                     " attempts; last: ", attempt.detail)] {
          return store_.DeadLetter(lease, error);
        };
        must_record = true;
      } else {
        outcome = attempt.throttled ? "throttled" : "retry";
        // Due when the destination resumes (a throttled or Retry-After entry loses no place
        // in the order), or after its own back-off if that is longer.
        absl::Time due = paused_until_;
        if (!attempt.throttled && !attempt.retry_after) {
          due = std::max(due, end + RetryDelay(options_, lease.entry.attempts + 1, std::nullopt, random_));
        }
        record = [this, &lease, &attempt, due] { return store_.RetryLater(lease, due, attempt.detail); };
      }
      if (attempt.retry_after || attempt.throttled) {
        // The helpdesk asked for quiet: a restart within the pause must not break it.
        record = [this, until = paused_until_, then = std::move(record)] {
          if (auto s = store_.SetDestinationPause(options_.name, until); !s.ok()) {
            spdlog::error("event=pause_store_failed destination={} error=\"{}\"", options_.name,
                          std::string(s.message()));
          }
          return then();
        };
      }
      spdlog::warn("event=delivery_failed destination={} attempt={} outcome={} detail=\"{}\"",
                   options_.name, lease.entry.attempts + 1, outcome, attempt.detail);
      break;
    }
    case Attempt::Kind::kPermanent:
      outcome = "dead_letter";
      record = [this, &lease, &attempt] { return store_.DeadLetter(lease, attempt.detail); };
      must_record = true;
      spdlog::error("event=delivery_rejected destination={} detail=\"{}\"", options_.name, attempt.detail);
      break;
  }
  // A delivery that happened, or a dead letter, must be recorded before anything else leaves:
  // the entry stays leased (nobody sends it again) and this worker records it once storage
  // is back. Stopping first leaves it to the next start, which delivers it once more with the
  // same id.
  auto as_status_or = [&record]() -> absl::StatusOr<bool> {
    absl::Status s = record();
    if (!s.ok()) return s;
    return true;
  };
  absl::Status grouped = absl::UnknownError("not grouped");
  if (plain_ack) grouped = co_await acks_.Call(&lease);
  if (grouped.ok()) {
    // Recorded with its group.
  } else if (must_record) {
    (void)co_await UntilStored(as_status_or, outcome);
  } else if (const absl::StatusOr<bool> stored = co_await pool_.Run(as_status_or); !stored.ok()) {
    spdlog::error("event=delivery_store_failed destination={} operation={} error=\"{}\"", options_.name,
                  outcome, std::string(stored.status().message()));
  }
  metrics_.delivery_attempts.Add({{"destination", options_.name}, {"outcome", outcome}}).Increment();
  // Which message went out for which entry: what a loss or a duplicate is traced with.
  spdlog::debug("event=delivery_outcome destination={} seq={} generation={} message={} outcome={}", options_.name,
                lease.seq, lease.generation, lease.entry.message_key, outcome);
  if (reply_note) {
    // The note on the ticket is the helpdesk's delivery like any other (counted above).
  } else if (lease.entry.reply && attempt.kind == Attempt::Kind::kDelivered) {
    spdlog::info("event=acknowledgement_sent destination={} team={} platform={} id={}", options_.name,
                 lease.entry.team, platform, attempt.remote_ticket);
    CountReply(platform, "sent");
  } else if (lease.entry.reply && std::string_view(outcome) == "dead_letter") {
    CountReply(platform, attempt.reason.empty() ? "refused" : attempt.reason);
  }
}

std::shared_ptr<Dispatcher> Dispatchers::Find(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Dispatcher>> Dispatchers::All() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::shared_ptr<Dispatcher>> all;
  all.reserve(by_name_.size());
  for (const auto& [name, dispatcher] : by_name_) all.push_back(dispatcher);
  return all;
}

std::shared_ptr<Dispatcher> Dispatchers::Put(std::shared_ptr<Dispatcher> dispatcher) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<Dispatcher>& slot = by_name_[dispatcher->options().name];
  std::swap(slot, dispatcher);
  return dispatcher;
}

std::shared_ptr<Dispatcher> Dispatchers::Remove(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return nullptr;
  std::shared_ptr<Dispatcher> removed = std::move(it->second);
  by_name_.erase(it);
  return removed;
}

}  // namespace triage::daemon
