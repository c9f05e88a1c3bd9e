#include "daemon/ingest.h"

#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "daemon/acknowledge.h"
#include "daemon/async.h"
#include "daemon/crypto.h"
#include "router/ticket_json.h"

namespace triage::daemon {

absl::StatusOr<std::shared_ptr<const Pipeline>> Pipeline::Create(const config::Config& config) {
  auto pipeline = std::make_shared<Pipeline>();
  absl::StatusOr<std::shared_ptr<const router::Triager>> triager =
      router::Triager::Create(config.scoring, config.routing);
  if (!triager.ok()) return triager.status();
  pipeline->triager = *std::move(triager);
  pipeline->sources = config.sources;
  pipeline->conversation_window = config.conversation_window;
  pipeline->trusted_proxies = config.server.trusted_proxies;
  pipeline->destinations = config.destinations;
  pipeline->teams = config.teams;
  auto find = [&](const std::string& name) -> const config::DestinationOptions* {
    for (const config::DestinationOptions& d : pipeline->destinations) {
      if (d.name == name) return &d;
    }
    return nullptr;
  };
  for (const config::TeamOptions& team : pipeline->teams) {
    auto& out = pipeline->team_destinations[team.name];
    for (const std::string& name : team.destinations) {
      if (const config::DestinationOptions* d = find(name)) out.push_back(d);
    }
    if (!team.acknowledge) continue;
    Pipeline::Acknowledging& acknowledging = pipeline->acknowledging[team.name];
    acknowledging.options = &*team.acknowledge;
    for (const std::string& name : team.acknowledge->via) {
      if (const config::DestinationOptions* d = find(name)) acknowledging.via.push_back(d);
    }
    for (const config::DestinationOptions* d : out) {
      if (d->type->keeps_tickets()) acknowledging.notes.insert(d->name);
    }
  }
  return pipeline;
}

http::status IngressStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return http::status::ok;
    case absl::StatusCode::kInvalidArgument: return http::status::bad_request;
    case absl::StatusCode::kUnauthenticated: return http::status::unauthorized;
    case absl::StatusCode::kNotFound: return http::status::not_found;
    case absl::StatusCode::kPermissionDenied: return http::status::forbidden;
    case absl::StatusCode::kFailedPrecondition: return http::status::method_not_allowed;
    case absl::StatusCode::kResourceExhausted:  // queue full or writer saturated: retry later
    case absl::StatusCode::kUnavailable: return http::status::service_unavailable;
    default: return http::status::internal_server_error;
  }
}

Ingest::Ingest(std::shared_ptr<const Pipeline> pipeline, storage::Store& store, BlockingPool& pool,
               Metrics& metrics)
    : pipeline_(std::move(pipeline)), store_(store), pool_(pool), metrics_(metrics) {}

namespace {

// A reason for the log: bounded, on one line, without quotes that would end the field.
std::string Printable(absl::string_view text) {
  std::string out(text.substr(0, 200));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == '"') c = ' ';
  }
  return out;
}

}  // namespace

std::optional<int64_t> Ingest::AdmitLog(const std::string& key) {
  absl::MutexLock lock(&log_mu_);
  return log_limiter_.Admit(key, absl::Now());
}

Response Ingest::Answer(absl::string_view source, const absl::Status& status,
                        const Caller& caller) {
  const http::status code = IngressStatus(status);
  const std::string status_text = std::to_string(static_cast<int>(code));
  metrics_.ingest_requests.Add({{"source", std::string(source)}, {"status", status_text}}).Increment();
  // One warn line per source and status a second at most (a flood of bad requests must not
  // flood the journal): the reason, never the body or a secret. Storage failures have their own
  // error line (ingest_store_failed).
  if (status.code() != absl::StatusCode::kUnavailable) {
    const std::optional<int64_t> suppressed = AdmitLog(absl::StrCat(source, " ", status_text));
    if (suppressed) {
      spdlog::warn("event=ingest_refused source={} status={} client={} request_id={} reason=\"{}\" suppressed={}",
                   std::string(source), status_text, caller.address.ToString(), caller.request_id,
                   Printable(status.message()), *suppressed);
    }
  }
  // Storage errors name files and paths: the log has them (ingest_store_failed), the network
  // gets a generic answer.
  const bool storage = status.code() == absl::StatusCode::kUnavailable;
  Response response = JsonError(code, storage ? "storage unavailable; retry later" : status.message());
  if (code == http::status::service_unavailable) response.set(http::field::retry_after, "5");
  return response;
}

config::IpAddress FromAsio(const asio::ip::address& address) {
  config::IpAddress out;
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    std::copy(bytes.begin(), bytes.end(), out.bytes.begin());
    out.v4 = true;
  } else if (address.to_v6().is_v4_mapped()) {
    return FromAsio(asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()));
  } else {
    const auto bytes = address.to_v6().to_bytes();
    std::copy(bytes.begin(), bytes.end(), out.bytes.begin());
  }
  return out;
}

config::IpAddress ClientAddress(const asio::ip::address& peer, const Request& request,
                                const std::vector<config::IpNetwork>& trusted_proxies) {
  config::IpAddress client = FromAsio(peer);
  if (!config::AnyContains(trusted_proxies, client)) return client;
  // Right to left: each hop appended the address it received from; the first one that is not
  // a trusted proxy is the client. Several headers count as one list, in order.
  std::vector<absl::string_view> hops;
  const auto [first, last] = request.equal_range("X-Forwarded-For");
  for (auto it = first; it != last; ++it) {
    for (absl::string_view hop : absl::StrSplit(ToAbsl(it->value()), ',')) {
      hops.push_back(absl::StripAsciiWhitespace(hop));
    }
  }
  for (auto hop = hops.rbegin(); hop != hops.rend(); ++hop) {
    const std::optional<config::IpAddress> address = config::IpAddress::Parse(*hop);
    if (!address) break;  // garbage: believe nothing further left
    client = *address;
    if (!config::AnyContains(trusted_proxies, client)) break;
  }
  return client;
}

std::string RequestId(const Request& request) {
  // The proxy's or the platform's id when it is a sane token, else one of our own.
  const auto given = request.find("X-Request-Id");
  if (given != request.end()) {
    const absl::string_view id = ToAbsl(given->value());
    const bool sane = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
      return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
    if (sane) return std::string(id);
  }
  thread_local absl::BitGen random;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(random));
}

asio::awaitable<Response> Ingest::Handle(Request& request, const asio::ip::address& peer) {
  const std::shared_ptr<const Pipeline> pipeline = pipeline_.load();
  const Caller caller{ClientAddress(peer, request, pipeline->trusted_proxies), RequestId(request)};
  absl::string_view path = ToAbsl(request.target());
  path = path.substr(0, path.find('?'));
  if (!absl::ConsumePrefix(&path, "/webhooks/")) {
    co_return JsonError(http::status::not_found, "no such path; webhooks are under /webhooks/<source>");
  }
  for (const config::SourceOptions& source : pipeline->sources) {
    if (source.name == path) {
      Response response = co_await HandleSource(*pipeline, source, request, caller);
      response.set("X-Request-Id", caller.request_id);
      co_return response;
    }
  }
  // Unknown source names are not used as metric labels: they come from outside.
  Response response = Answer("unknown", absl::NotFoundError(absl::StrCat("unknown source '", path, "'")), caller);
  response.set("X-Request-Id", caller.request_id);
  co_return response;
}

namespace {

absl::string_view Header(const Request& request, absl::string_view name) {
  const auto it = request.find(beast::string_view(name.data(), name.size()));
  return it == request.end() ? absl::string_view() : ToAbsl(it->value());
}

}  // namespace

Response Ingest::Handshake(const config::SourceOptions& source, const Request& request,
                           const Caller& caller) {
  const absl::string_view target = ToAbsl(request.target());
  switch (source.handshake.kind) {
    case router::HandshakeSpec::Kind::kXCrc: {
      const std::optional<std::string> token = QueryParam(target, "crc_token");
      if (!token || token->empty()) {
        return Answer(source.name, absl::InvalidArgumentError("missing crc_token"), caller);
      }
      metrics_.ingest_requests.Add({{"source", source.name}, {"status", "200"}}).Increment();
      return JsonResponse(http::status::ok,
                          absl::StrCat("{\"response_token\":\"", XSignature(source.handshake.key, *token), "\"}"));
    }
    case router::HandshakeSpec::Kind::kMetaVerify: {
      const std::optional<std::string> mode = QueryParam(target, "hub.mode");
      const std::optional<std::string> token = QueryParam(target, "hub.verify_token");
      const std::optional<std::string> challenge = QueryParam(target, "hub.challenge");
      if (!mode || *mode != "subscribe" || !token || !challenge ||
          !ConstantTimeEquals(*token, source.handshake.key)) {
        metrics_.signature_failures.Add({{"source", source.name}}).Increment();
        return Answer(source.name, absl::PermissionDeniedError("verification refused"), caller);
      }
      metrics_.ingest_requests.Add({{"source", source.name}, {"status", "200"}}).Increment();
      Response response{http::status::ok, 11};
      response.set(http::field::content_type, "text/plain");
      response.body() = *challenge;
      return response;
    }
    case router::HandshakeSpec::Kind::kNone:
      break;
  }
  Response response = Answer(source.name, absl::FailedPreconditionError("use POST"), caller);
  response.set(http::field::allow, "POST");
  return response;
}

bool SignatureValid(const std::vector<router::SignatureCheck>& checks, const Request& request) {
  const std::string& body = request.body();
  for (const router::SignatureCheck& check : checks) {
    const absl::string_view value = Header(request, check.header);
    if (check.only_if_present && value.empty()) continue;
    switch (check.kind) {
      case router::SignatureCheck::Kind::kHmacSha256Hex:
        if (check.prefix_required && !absl::StartsWith(value, check.prefix)) return false;
        return VerifyHexHmacSha256(check.key, body, value, check.prefix) ||
               (!check.alternate_key.empty() && VerifyHexHmacSha256(check.alternate_key, body, value, check.prefix));
      case router::SignatureCheck::Kind::kHmacSha256Base64:
        return VerifyBase64HmacSha256(check.key, body, value, check.prefix) ||
               (!check.alternate_key.empty() && VerifyBase64HmacSha256(check.alternate_key, body, value, check.prefix));
      case router::SignatureCheck::Kind::kSharedToken:
        return !value.empty() && (ConstantTimeEquals(value, check.key) ||
                                  (!check.alternate_key.empty() && ConstantTimeEquals(value, check.alternate_key)));
    }
  }
  return false;
}

void Ingest::CountEvents(const config::SourceOptions& source, const router::ParseResult& parsed) {
  for (const auto& [kind, count] : parsed.events) {
    metrics_.ingest_events.Add({{"source", source.name}, {"kind", kind}}).Increment(count);
  }
  for (const auto& [reason, count] : parsed.ignored) {
    metrics_.ingest_ignored.Add({{"source", source.name}, {"reason", reason}}).Increment(count);
    // Routine notifications (the brand's own posts, receipts, reactions) are only counted; a
    // customer's message the platform sent without its words is said, at warn (what could not
    // be read is quarantined, and said so by HandleSource).
    if (reason != "no_content") continue;
    const std::optional<int64_t> suppressed = AdmitLog(absl::StrCat(source.name, " ignored ", reason));
    if (suppressed) {
      spdlog::warn("event=ingest_ignored source={} reason={} items={} suppressed={}", source.name, reason, count,
                   *suppressed);
    }
  }
}

asio::awaitable<Response> Ingest::HandleSource(const Pipeline& pipeline,
                                               const config::SourceOptions& source,
                                               Request& request, const Caller& caller) {
  const absl::Time received_at = absl::Now();
  if (!source.allow_from.empty() && !config::AnyContains(source.allow_from, caller.address)) {
    co_return Answer(source.name,
                     absl::PermissionDeniedError(absl::StrCat(caller.address.ToString(), " is not in this source's allow_from")),
                     caller);
  }
  if (request.method() == http::verb::get) co_return Handshake(source, request, caller);
  if (request.method() != http::verb::post) {
    Response response = Answer(source.name, absl::FailedPreconditionError("use POST"), caller);
    response.set(http::field::allow, "GET, POST");
    co_return response;
  }
  metrics_.ingest_bytes.Add({{"source", source.name}}).Increment(static_cast<double>(request.body().size()));

  if (!SignatureValid(source.signature, request)) {
    metrics_.signature_failures.Add({{"source", source.name}}).Increment();
    co_return Answer(source.name, absl::UnauthenticatedError("missing or wrong signature"), caller);
  }

  absl::StatusOr<router::ParseResult> parsed = source.type->Parse(request.body(), source.parse);
  std::optional<storage::QuarantineRecord> quarantine;
  if (!parsed.ok()) {
    // A platform's signed body the parser cannot read is this version's gap, not the sender's:
    // kept for a replay and acknowledged (a platform retries errors for hours, then drops the
    // body for good). The generic source's contract stays a 400 naming the problem.
    if (!source.type->quarantine_unparsable() || parsed.status().code() != absl::StatusCode::kInvalidArgument) {
      co_return Answer(source.name, parsed.status(), caller);
    }
    quarantine = storage::QuarantineRecord{0, source.name, router::kCouldNotRead,
                                           std::string(parsed.status().message()), request.body()};
    parsed = router::ParseResult{};
    parsed->CouldNotRead("body", quarantine->detail);
  } else if (!parsed->complete()) {
    quarantine = storage::QuarantineRecord{0, source.name, router::kCouldNotRead,
                                           absl::StrJoin(parsed->unreadable, "; "), request.body()};
  }
  CountEvents(source, *parsed);
  if (parsed->messages.empty() && !quarantine) {
    // Nothing to route (likes, receipts, the brand's own posts): acknowledged at once.
    metrics_.ingest_requests.Add({{"source", source.name}, {"status", "200"}}).Increment();
    co_return JsonResponse(http::status::ok, R"({"accepted":0,"duplicates":0})");
  }
  const bool quarantined = quarantine.has_value();
  const storage::IngestResult result =
      co_await RouteAndStore(pipeline, source, std::move(parsed->messages), received_at, std::move(quarantine));
  if (!result.status.ok()) co_return Answer(source.name, result.status, caller);
  if (quarantined) {
    metrics_.quarantined.Add({{"source", source.name}}).Increment();
    if (const std::optional<int64_t> suppressed = AdmitLog(absl::StrCat(source.name, " quarantined"))) {
      spdlog::warn("event=ingest_quarantined source={} id={} request_id={} detail=\"{}\" suppressed={}", source.name,
                   result.quarantine_id, caller.request_id, Printable(absl::StrJoin(parsed->unreadable, "; ")),
                   *suppressed);
    }
  }
  metrics_.ingest_requests.Add({{"source", source.name}, {"status", "200"}}).Increment();
  metrics_.ingest_latency.Add({{"source", source.name}}, Buckets())
      .Observe(absl::ToDoubleSeconds(absl::Now() - received_at));
  co_return JsonResponse(http::status::ok,
                         absl::StrCat("{\"accepted\":", result.stored, ",\"duplicates\":", result.duplicates,
                                      quarantined ? ",\"quarantined\":1}" : "}"));
}

// GCC 12 reports asio's coroutine frame delete as mismatched with its new in this function (a
// false positive of its inliner: awaitable_frame_base declares both); nothing is mismatched.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<storage::IngestResult> Ingest::RouteAndStore(const Pipeline& pipeline,
                                                             const config::SourceOptions& source,
                                                             std::vector<router::Message> messages,
                                                             absl::Time received_at,
                                                             std::optional<storage::QuarantineRecord> quarantine) {
  std::vector<storage::NewMessage> batch;
  batch.reserve(messages.size());
  struct Routed {
    std::string team, level, rule;
    bool dropped;
  };
  std::vector<Routed> routed;
  routed.reserve(messages.size());
  for (router::Message& message : messages) {
    std::string key = storage::MessageKey(message.source, message.dedup_id());
    // A follow-up goes to the team that owns the conversation: a RocksDB point read, from
    // memory here when it can be, from the disk on the pool otherwise.
    std::string conversation_key;
    std::optional<router::ConversationOwner> conversation;
    if (!message.conversation_id.empty() && pipeline.conversation_window > absl::ZeroDuration()) {
      conversation_key = storage::MessageKey(message.source, message.conversation_id);
      const absl::Time since = received_at - pipeline.conversation_window;
      auto team = store_.ConversationTeamInMemory(conversation_key, since);
      if (!team) {
        team = co_await pool_.Run([&] { return store_.ConversationTeam(conversation_key, since); });
      }
      if (!team->ok()) {
        spdlog::error("event=ingest_read_failed source={} error=\"{}\"", source.name,
                      std::string(team->status().message()));
        co_return storage::IngestResult{team->status()};
      }
      conversation = **std::move(team);
    }
    std::string thread_key;
    if (!message.conversation_id.empty()) {
      thread_key = storage::ThreadKey(message.source, message.conversation_id, message.author.id);
    }
    const router::RoutedMessage r = pipeline.triager->Triage(
        std::move(message), received_at, conversation ? &*conversation : nullptr);
    storage::NewMessage& out = batch.emplace_back();
    out.key = std::move(key);
    out.thread_key = std::move(thread_key);
    out.ticket_json = router::TicketJson(r);
    out.level = r.triage.level;
    out.sla_deadline = r.triage.sla_deadline;
    routed.push_back({r.triage.team, std::string(router::LevelName(r.triage.level)), r.triage.rule,
                      r.triage.dropped});
    if (r.triage.dropped) continue;  // stored for dedup, delivered nowhere
    if (!conversation_key.empty()) {
      out.conversation_key = std::move(conversation_key);
      // The conversation is as urgent as its most urgent message (its ticket is never lowered).
      out.conversation.team = r.triage.team;
      out.conversation.level = conversation && conversation->level && conversation->team == r.triage.team
                                   ? std::min(*conversation->level, r.triage.level)
                                   : r.triage.level;
    }
    // One delivery per destination that joins informed teams: the owner's when it uses the
    // destination, else the first informed team's; the ticket names the others.
    auto add_team = [&](const std::string& team, bool owner) {
      const auto found = pipeline.team_destinations.find(team);
      if (found == pipeline.team_destinations.end()) return;
      for (const config::DestinationOptions* destination : found->second) {
        if (!destination->Accepts(r.triage.level, r.triage.reach)) continue;
        if (destination->join_informed &&
            std::any_of(out.deliveries.begin(), out.deliveries.end(),
                        [&](const storage::Delivery& d) { return d.destination == destination->name; })) {
          continue;
        }
        out.deliveries.push_back({destination->name, team, owner});
      }
    };
    add_team(r.triage.team, true);
    for (const std::string& team : r.triage.informed) add_team(team, false);
    // The customer hears that their message arrived, through the owner team's reply
    // destination, queued in the same write as the ticket.
    if (const auto found = pipeline.acknowledging.find(r.triage.team); found != pipeline.acknowledging.end()) {
      if (const config::DestinationOptions* reply =
              WhichReplyDestination(*found->second.options, found->second.via, r, source.parse.brand_ids)) {
        out.deliveries.push_back({reply->name, r.triage.team, true, true});
        // Each helpdesk of the ticket notes on it what the customer was told (after the
        // ticket: one chain).
        for (size_t i = 0, n = out.deliveries.size(); i < n; ++i) {
          if (out.deliveries[i].owner && !out.deliveries[i].reply &&
              found->second.notes.contains(out.deliveries[i].destination)) {
            std::string helpdesk = out.deliveries[i].destination;
            out.deliveries.push_back({std::move(helpdesk), r.triage.team, true, true});
          }
        }
      }
    }
  }

  storage::IngestResult result =
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(storage::IngestResult)>(
          [&](auto handler) {
            store_.Submit(std::move(batch), received_at, ResumeOnOwnExecutor(std::move(handler)),
                          std::move(quarantine));
          },
          asio::use_awaitable);
  if (!result.status.ok()) {
    spdlog::error("event=ingest_store_failed source={} error=\"{}\"", source.name,
                  std::string(result.status.message()));
    co_return result;
  }
  int dropped = 0;
  for (size_t i = 0; i < routed.size(); ++i) {
    if (result.duplicate[i]) continue;
    if (routed[i].dropped) {
      ++dropped;
      const std::optional<int64_t> suppressed = AdmitLog(absl::StrCat(source.name, " dropped ", routed[i].rule));
      if (suppressed) {
        spdlog::info("event=message_dropped source={} rule={} suppressed={}", source.name, routed[i].rule, *suppressed);
      }
      continue;
    }
    metrics_.routed.Add({{"team", routed[i].team}, {"level", routed[i].level}, {"rule", routed[i].rule}})
        .Increment();
  }
  metrics_.ingest_messages.Add({{"source", source.name}, {"outcome", "dropped"}}).Increment(dropped);
  metrics_.ingest_messages.Add({{"source", source.name}, {"outcome", "stored"}})
      .Increment(result.stored - dropped);
  metrics_.ingest_messages.Add({{"source", source.name}, {"outcome", "duplicate"}})
      .Increment(result.duplicates);
  co_return result;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

asio::awaitable<std::vector<ReplayOutcome>> Ingest::Replay(std::vector<storage::Store::Quarantined> items) {
  const std::shared_ptr<const Pipeline> pipeline = pipeline_.load();
  std::vector<ReplayOutcome> outcomes;
  for (storage::Store::Quarantined& item : items) {
    ReplayOutcome& outcome = outcomes.emplace_back();
    outcome.id = item.id;
    const auto source = std::find_if(pipeline->sources.begin(), pipeline->sources.end(),
                                     [&](const config::SourceOptions& s) { return s.name == item.record.source; });
    if (source == pipeline->sources.end()) {
      outcome.outcome = "source_not_configured";
      outcome.detail = absl::StrCat("no source '", item.record.source, "' in the running config");
      continue;
    }
    absl::StatusOr<router::ParseResult> parsed = source->type->Parse(item.record.body, source->parse);
    if (!parsed.ok()) {
      outcome.outcome = "still_unreadable";
      outcome.detail = std::string(parsed.status().message());
      continue;
    }
    const bool complete = parsed->complete();
    outcome.detail = absl::StrJoin(parsed->unreadable, "; ");
    // Routed as of when it was received (its SLA runs from then), deduplicated as usual.
    const storage::IngestResult result =
        co_await RouteAndStore(*pipeline, *source, std::move(parsed->messages),
                               absl::FromUnixMillis(item.record.received_unix_ms), std::nullopt);
    if (!result.status.ok()) {
      outcome.outcome = "error";
      outcome.detail = std::string(result.status.message());
      break;  // storage trouble: the rest stays quarantined
    }
    outcome.accepted = result.stored;
    outcome.duplicates = result.duplicates;
    if (!complete) {
      outcome.outcome = "still_unreadable";
      continue;
    }
    const absl::Status released = co_await pool_.Run([&] { return store_.ReleaseQuarantined(item.id); });
    outcome.outcome = released.ok() ? "released" : "error";
    if (!released.ok()) outcome.detail = std::string(released.message());
  }
  for (const ReplayOutcome& outcome : outcomes) {
    metrics_.quarantine_replays.Add({{"outcome", outcome.outcome}}).Increment();
  }
  co_return outcomes;
}

}  // namespace triage::daemon
