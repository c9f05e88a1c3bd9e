#include "daemon/admin_api.h"

#include <simdjson.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "daemon/crypto.h"
#include "router/json_util.h"
#include "router/ticket_template.h"
#include "router/json_writer.h"

namespace triage::daemon {
namespace {

constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;
constexpr size_t kReplayBatch = 100;  // quarantined requests one replay --all reads into memory
constexpr size_t kMaxLabelPage = 5000;

const char* BreakerName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kOpen: return "open";
    case CircuitBreaker::State::kHalfOpen: return "half_open";
    case CircuitBreaker::State::kClosed: break;
  }
  return "closed";
}

}  // namespace

AdminApi::AdminApi(const config::AdminOptions& options, storage::Store& store,
                   const Dispatchers& dispatchers)
    : options_(options), store_(store), dispatchers_(dispatchers) {}

std::optional<Response> AdminApi::Refused(const Request& request, bool read_only) const {
  if (read_only && options_.read_without_token) return std::nullopt;
  if (options_.token.empty()) {
    return JsonError(http::status::forbidden,
                     "the admin API needs admin.token in the config for this endpoint");
  }
  const auto header = request.find(http::field::authorization);
  absl::string_view given = header == request.end() ? "" : ToAbsl(header->value());
  if (!absl::ConsumePrefix(&given, "Bearer ") || !ConstantTimeEquals(given, options_.token)) {
    Response response = JsonError(http::status::unauthorized,
                                  header == request.end() ? "a bearer token is required"
                                                          : "wrong bearer token");
    response.set(http::field::www_authenticate, "Bearer realm=\"triaged\"");
    return response;
  }
  return std::nullopt;
}

std::optional<Response> AdminApi::Handle(const Request& request) {
  const absl::string_view target = ToAbsl(request.target());
  const size_t question = target.find('?');
  const absl::string_view path = target.substr(0, question);
  if (!absl::StartsWith(path, "/v1/")) return std::nullopt;
  const bool get = request.method() == http::verb::get;
  const bool post = request.method() == http::verb::post;

  if (path == "/v1/queues" || path == "/v1/dead-letters" || path == "/v1/labels") {
    if (!get) return JsonError(http::status::method_not_allowed, "use GET");
    if (auto refused = Refused(request, true)) return refused;
    if (path == "/v1/labels") return Labels(target);
    return path == "/v1/queues" ? Queues() : DeadLetters(target);
  }
  absl::string_view message = path;
  if (absl::ConsumePrefix(&message, "/v1/messages/")) {
    if (!get) return JsonError(http::status::method_not_allowed, "use GET");
    if (auto refused = Refused(request, true)) return refused;
    const size_t slash = message.find('/');
    if (slash == absl::string_view::npos || slash == 0 || slash + 1 == message.size()) {
      return JsonError(http::status::bad_request, "use /v1/messages/SOURCE/ID");
    }
    // Ids may hold anything: they come percent-encoded.
    const std::optional<std::string> source = PercentDecode(message.substr(0, slash), false);
    const std::optional<std::string> id = PercentDecode(message.substr(slash + 1), false);
    if (!source || !id) return JsonError(http::status::bad_request, "malformed %-escape in the path");
    return Message(*source, *id);
  }
  absl::string_view quarantined = path;
  if (path == "/v1/quarantine" || (absl::ConsumePrefix(&quarantined, "/v1/quarantine/") && quarantined != "replay")) {
    if (!get) return JsonError(http::status::method_not_allowed, "use GET");
    if (auto refused = Refused(request, true)) return refused;
    if (path == "/v1/quarantine") return Quarantine(target);
    uint64_t id = 0;
    if (!absl::SimpleAtoi(quarantined, &id)) return JsonError(http::status::bad_request, "use /v1/quarantine/ID");
    return QuarantineItem(id);
  }
  if (path == "/v1/dead-letters/requeue") {
    if (!post) return JsonError(http::status::method_not_allowed, "use POST");
    if (auto refused = Refused(request, false)) return refused;
    return Requeue(request.body());
  }
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "/v1/destinations/")) {
    const bool pause = absl::ConsumeSuffix(&rest, "/pause");
    if (pause || absl::ConsumeSuffix(&rest, "/resume")) {
      if (!post) return JsonError(http::status::method_not_allowed, "use POST");
      if (auto refused = Refused(request, false)) return refused;
      return Pause(std::string(rest), pause);
    }
  }
  return JsonError(http::status::not_found, "no such admin endpoint");
}

Response AdminApi::Queues() {
  const absl::Time now = absl::Now();
  // On a cluster, every node's owned queues (asked); the nodes that did not answer are named.
  std::vector<std::string> unanswered;
  const std::vector<storage::QueueDepth> stats = store_.QueueStats(now, &unanswered);
  int64_t queued = 0;
  for (const storage::QueueDepth& d : stats) queued += d.entries;
  // Configured destinations, then any that still holds entries without being configured.
  std::vector<std::pair<std::string, std::shared_ptr<Dispatcher>>> destinations;
  for (std::shared_ptr<Dispatcher>& dispatcher : dispatchers_.All()) {
    destinations.emplace_back(dispatcher->options().name, std::move(dispatcher));
  }
  for (const storage::QueueDepth& d : stats) {
    if (std::none_of(destinations.begin(), destinations.end(),
                     [&](const auto& known) { return known.first == d.destination; })) {
      destinations.emplace_back(d.destination, nullptr);
    }
  }
  router::JsonWriter w;
  w.BeginObject();
  w.Key("now").Time(now);
  w.Key("queued").Int(queued);
  w.Key("dead_letters").Int(store_.DeadLetterCount());
  w.Key("nodes_unanswered").BeginArray();
  for (const std::string& node : unanswered) w.String(node);
  w.EndArray();
  w.Key("destinations").BeginArray();
  for (const auto& [name, dispatcher] : destinations) {
    int64_t entries = 0, at_risk = 0, overdue = 0;
    for (const storage::QueueDepth& d : stats) {
      if (d.destination != name) continue;
      entries += d.entries;
      at_risk += d.sla_at_risk;
      overdue += d.sla_overdue;
    }
    w.BeginObject();
    w.Key("name").String(name);
    w.Key("configured").Bool(dispatcher != nullptr);
    w.Key("entries").Int(entries);
    w.Key("sla_at_risk").Int(at_risk);
    w.Key("sla_overdue").Int(overdue);
    const Dispatcher::Status status = dispatcher ? dispatcher->status() : Dispatcher::Status{};
    w.Key("paused").Bool(status.manual_pause);
    w.Key("paused_until");
    if (status.paused_until > now) {
      w.Time(status.paused_until);
    } else {
      w.Null();
    }
    w.Key("breaker").String(BreakerName(status.breaker));
    // The open tickets of each team's group at the helpdesk, as last counted (count_interval).
    w.Key("helpdesk_open").BeginArray();
    if (dispatcher) {
      for (const std::string& team : dispatcher->options().teams) {
        const std::optional<Dispatcher::OpenCount> open = dispatcher->OpenTickets(team);
        if (!open) continue;
        w.BeginObject().Key("team").String(team).Key("tickets").Int(open->count);
        w.Key("counted_at").Time(open->counted_at).EndObject();
      }
    }
    w.EndArray();
    w.Key("queues").BeginArray();
    for (const storage::QueueDepth& d : stats) {
      if (d.destination != name) continue;
      w.BeginObject();
      w.Key("team").String(d.team);
      w.Key("level").String(router::LevelName(d.level));
      w.Key("entries").Int(d.entries);
      w.Key("oldest_age_seconds")
          .Int(std::max<int64_t>(0, absl::ToInt64Seconds(now - absl::FromUnixMillis(d.oldest_enqueued_unix_ms))));
      w.Key("sla_at_risk").Int(d.sla_at_risk);
      w.Key("sla_overdue").Int(d.sla_overdue);
      w.EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().EndObject();
  return JsonResponse(http::status::ok, w.Take());
}

Response AdminApi::DeadLetters(absl::string_view target) {
  const std::string destination = QueryParam(target, "destination").value_or("");
  size_t limit = kDefaultLimit;
  if (const std::string text = QueryParam(target, "limit").value_or(""); !text.empty()) {
    if (!absl::SimpleAtoi(text, &limit) || limit == 0 || limit > kMaxLimit) {
      return JsonError(http::status::bad_request, absl::StrCat("limit must be 1 to ", kMaxLimit));
    }
  }
  if (!destination.empty() && dispatchers_.Find(destination) == nullptr) {
    return JsonError(http::status::not_found, absl::StrCat("no destination ", destination));
  }
  router::JsonWriter w;
  w.BeginObject().Key("dead_letters").BeginArray();
  for (const storage::DeadEntry& d : store_.DeadLetters(destination, limit)) {
    const std::string& key = d.entry.message_key;
    const size_t zero = key.find('\0');
    w.BeginObject();
    w.Key("destination").String(d.destination);
    w.Key("seq").Int(static_cast<int64_t>(d.seq));
    w.Key("source").String(key.substr(0, zero));
    w.Key("id").String(zero == std::string::npos ? "" : key.substr(zero + 1));
    w.Key("team").String(d.entry.team);
    w.Key("role").String(d.entry.owner ? "owner" : "informed");
    w.Key("level").String(router::LevelName(d.entry.level));
    w.Key("attempts").Int(d.entry.attempts);
    w.Key("enqueued_at").Time(absl::FromUnixMillis(d.entry.enqueued_unix_ms));
    w.Key("last_error").String(d.entry.last_error);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return JsonResponse(http::status::ok, w.Take());
}

Response AdminApi::Requeue(const std::string& body) {
  simdjson::dom::parser parser;
  router::json::element root;
  if (auto s = router::json::ParseDocument(parser, body, 8, &root); !s.ok() || !root.is_object()) {
    return JsonError(http::status::bad_request, R"(body must be {"destination":D,"seq":N} or {"destination":D,"all":true})");
  }
  // Typed strictly: a string destination, a non-negative integer seq, a boolean all.
  std::string_view destination_text;
  if (root["destination"].get(destination_text) != simdjson::SUCCESS || destination_text.empty()) {
    return JsonError(http::status::bad_request, "destination: must be a non-empty string");
  }
  const std::string destination(destination_text);
  std::optional<uint64_t> seq;
  if (root["seq"].error() != simdjson::NO_SUCH_FIELD) {
    uint64_t value = 0;
    if (root["seq"].get(value) != simdjson::SUCCESS) {
      return JsonError(http::status::bad_request, "seq: must be a non-negative integer");
    }
    seq = value;
  }
  bool all = false;
  if (root["all"].error() != simdjson::NO_SUCH_FIELD && root["all"].get(all) != simdjson::SUCCESS) {
    return JsonError(http::status::bad_request, "all: must be true or false");
  }
  if (seq.has_value() == all) {
    return JsonError(http::status::bad_request, "give a destination and either seq or all: true");
  }
  if (dispatchers_.Find(destination) == nullptr) {
    return JsonError(http::status::not_found, absl::StrCat("no destination ", destination));
  }
  const absl::StatusOr<int64_t> moved = store_.Requeue(destination, seq);
  if (!moved.ok()) {
    return JsonError(moved.status().code() == absl::StatusCode::kNotFound ? http::status::not_found
                                                                           : http::status::service_unavailable,
                     moved.status().message());
  }
  return JsonResponse(http::status::ok, absl::StrCat(R"({"requeued":)", *moved, "}"));
}

namespace {

void WriteQuarantined(const storage::Store::Quarantined& item, bool with_body, router::JsonWriter* w) {
  w->BeginObject();
  w->Key("id").Int(static_cast<int64_t>(item.id));
  w->Key("received_at").Time(absl::FromUnixMillis(item.record.received_unix_ms));
  w->Key("source").String(item.record.source);
  w->Key("reason").String(item.record.reason);
  w->Key("detail").String(item.record.detail);
  w->Key("bytes").Int(static_cast<int64_t>(item.record.body.size()));
  if (with_body) {
    // As text when it is UTF-8 (JSON bodies are), else base64: byte for byte either way.
    if (simdjson::validate_utf8(item.record.body.data(), item.record.body.size())) {
      w->Key("body").String(item.record.body);
    } else {
      w->Key("body_base64").String(absl::Base64Escape(item.record.body));
    }
  }
  w->EndObject();
}

}  // namespace

Response AdminApi::Quarantine(absl::string_view target) {
  uint64_t after = 0;
  if (const std::string text = QueryParam(target, "after").value_or(""); !text.empty() && !absl::SimpleAtoi(text, &after)) {
    return JsonError(http::status::bad_request, "after must be a quarantine id");
  }
  size_t limit = kDefaultLimit;
  if (const std::string text = QueryParam(target, "limit").value_or(""); !text.empty()) {
    if (!absl::SimpleAtoi(text, &limit) || limit == 0 || limit > kMaxLimit) {
      return JsonError(http::status::bad_request, absl::StrCat("limit must be 1 to ", kMaxLimit));
    }
  }
  const auto items = store_.ListQuarantine(after, limit);
  if (!items.ok()) return JsonError(http::status::service_unavailable, items.status().message());
  router::JsonWriter w;
  w.BeginObject().Key("quarantine").BeginArray();
  for (const storage::Store::Quarantined& item : *items) WriteQuarantined(item, false, &w);
  w.EndArray();
  w.Key("estimated_total").Int(store_.QuarantineEstimate());
  w.EndObject();
  return JsonResponse(http::status::ok, w.Take());
}

Response AdminApi::QuarantineItem(uint64_t id) {
  const auto item = store_.FindQuarantined(id);
  if (!item.ok()) return JsonError(http::status::service_unavailable, item.status().message());
  if (!item->has_value()) return JsonError(http::status::not_found, absl::StrCat("no quarantined request ", id));
  router::JsonWriter w;
  WriteQuarantined(**item, true, &w);
  return JsonResponse(http::status::ok, w.Take());
}

absl::StatusOr<std::vector<storage::Store::Quarantined>> AdminApi::ReplayItems(const std::string& body) {
  simdjson::dom::parser parser;
  router::json::element root;
  if (auto s = router::json::ParseDocument(parser, body, 8, &root); !s.ok() || !root.is_object()) {
    return absl::InvalidArgumentError(R"(body must be {"id":N} or {"all":true})");
  }
  std::optional<uint64_t> id;
  if (root["id"].error() != simdjson::NO_SUCH_FIELD) {
    uint64_t value = 0;
    if (root["id"].get(value) != simdjson::SUCCESS) return absl::InvalidArgumentError("id: must be a non-negative integer");
    id = value;
  }
  bool all = false;
  if (root["all"].error() != simdjson::NO_SUCH_FIELD && root["all"].get(all) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("all: must be true or false");
  }
  if (id.has_value() == all) return absl::InvalidArgumentError("give either id or all: true");
  // Bodies are up to server.max_body_bytes each: a replay holds at most kReplayBatch of them.
  if (all) return store_.ListQuarantine(0, kReplayBatch);
  absl::StatusOr<std::optional<storage::Store::Quarantined>> item = store_.FindQuarantined(*id);
  if (!item.ok()) return item.status();
  if (!item->has_value()) return absl::NotFoundError(absl::StrCat("no quarantined request ", *id));
  return std::vector<storage::Store::Quarantined>{**std::move(item)};
}

Response AdminApi::Message(absl::string_view source, absl::string_view id) {
  const std::string key = storage::MessageKey(source, id);
  const absl::StatusOr<std::string> ticket_json = store_.GetMessage(key);
  if (!ticket_json.ok()) {
    if (ticket_json.status().code() == absl::StatusCode::kNotFound) {
      return JsonError(http::status::not_found,
                       absl::StrCat("no message ", source, "/", id, " within the dedup window"));
    }
    return JsonError(http::status::service_unavailable, ticket_json.status().message());
  }
  const absl::StatusOr<router::TicketView> ticket = router::ParseTicketView(*ticket_json);
  const std::vector<storage::MessageDelivery> deliveries = store_.Deliveries(key);
  bool queued = false, dead = false;
  for (const auto& d : deliveries) {
    if (d.state == "delivered") continue;
    (d.state == "dead_letter" ? dead : queued) = true;
  }
  const bool dropped = ticket.ok() && ticket->dropped;
  const char* status = dropped ? "dropped" : queued ? "queued" : dead ? "dead_letter" : "delivered";

  router::JsonWriter w;
  w.BeginObject();
  w.Key("source").String(source);
  w.Key("id").String(id);
  w.Key("status").String(status);
  w.Key("ticket").Raw(*ticket_json);
  w.Key("deliveries").BeginArray();
  for (const storage::MessageDelivery& d : deliveries) {
    w.BeginObject();
    w.Key("destination").String(d.destination);
    w.Key("seq").Int(static_cast<int64_t>(d.seq));
    w.Key("team").String(d.entry.team);
    // A reply at a helpdesk that keeps tickets is its note on what the customer was told.
    const std::shared_ptr<Dispatcher> at = d.entry.reply ? dispatchers_.Find(d.destination) : nullptr;
    const bool note = at != nullptr && at->options().type->keeps_tickets();
    w.Key("role").String(note ? "reply_note" : d.entry.reply ? "reply" : d.entry.owner ? "owner" : "informed");
    w.Key("state").String(d.state);
    w.Key("position");
    if (d.position > 0) {
      w.Int(d.position);
    } else {
      w.Null();
    }
    w.Key("attempts").Int(d.entry.attempts);
    w.Key("next_attempt_at");
    if (d.entry.next_attempt_unix_ms > 0 && d.state == "retrying") {
      w.Time(absl::FromUnixMillis(d.entry.next_attempt_unix_ms));
    } else {
      w.Null();
    }
    w.Key("last_error").String(d.entry.last_error);
    w.Key("delivered_at");
    if (d.state == "delivered") {
      w.Time(d.delivered_at);
    } else {
      w.Null();
    }
    w.Key("remote_ticket");
    if (!d.remote_ticket.empty()) {
      w.String(d.remote_ticket);
    } else {
      w.Null();
    }
    if (d.entry.reply && !note) w.Key("text").String(d.text);  // what the customer was told, or why not
    w.EndObject();
  }
  w.EndArray();
  // The helpdesk tickets of its thread, for every team that received it.
  w.Key("remote_tickets").BeginArray();
  if (ticket.ok()) {
    const std::string thread = ticket->conversation_id.empty()
                                   ? key
                                   : storage::ThreadKey(source, ticket->conversation_id, ticket->author_id);
    for (const std::shared_ptr<Dispatcher>& dispatcher : dispatchers_.All()) {
      const std::string& destination = dispatcher->options().name;
      // The conversation's ticket, then the informed teams' own (a `separate` destination).
      for (int i = -1; i < static_cast<int>(ticket->informed.size()); ++i) {
        const bool owner = i < 0;
        const std::string& team = owner ? ticket->team : ticket->informed[i];
        absl::StatusOr<std::optional<storage::ThreadTicket>> remote =
            store_.FindThreadTicket(destination, owner, team, thread);
        if (remote.ok() && !remote->has_value() && owner) {
          remote = store_.FindThreadTicket(destination, false, team, thread);  // recorded before
        }
        if (!remote.ok()) return JsonError(http::status::service_unavailable, remote.status().message());
        if (remote->has_value()) {
          w.BeginObject().Key("destination").String(destination).Key("team").String(owner ? (*remote)->team : team);
          w.Key("ticket").String((*remote)->id);
          if ((*remote)->level) w.Key("level").String(router::LevelName(*(*remote)->level));
          w.EndObject();
        }
      }
    }
  }
  w.EndArray();
  // What an agent decided about it, if a helpdesk told us (feedback).
  w.Key("label");
  const absl::StatusOr<std::optional<std::string>> label = store_.Label(key);
  if (!label.ok()) return JsonError(http::status::service_unavailable, label.status().message());
  if (label->has_value()) {
    w.Raw(**label);
  } else {
    w.Null();
  }
  w.EndObject();
  return JsonResponse(http::status::ok, w.Take());
}

Response AdminApi::Labels(absl::string_view target) {
  size_t limit = kMaxLabelPage;
  if (const std::string text = QueryParam(target, "limit").value_or(""); !text.empty()) {
    if (!absl::SimpleAtoi(text, &limit) || limit == 0 || limit > kMaxLabelPage) {
      return JsonError(http::status::bad_request, absl::StrCat("limit must be 1 to ", kMaxLabelPage));
    }
  }
  std::string after;
  if (const std::string cursor = QueryParam(target, "after").value_or(""); !cursor.empty()) {
    if (!absl::WebSafeBase64Unescape(cursor, &after)) return JsonError(http::status::bad_request, "after: not a cursor");
  }
  std::string last;
  const absl::StatusOr<std::vector<std::string>> labels = store_.Labels(after, limit, &last);
  if (!labels.ok()) return JsonError(http::status::service_unavailable, "storage unavailable");
  router::JsonWriter w;
  w.BeginObject().Key("labels").BeginArray();
  for (const std::string& record : *labels) w.Raw(record);
  w.EndArray();
  w.Key("next");
  if (labels->size() == limit) {
    w.String(absl::WebSafeBase64Escape(last));
  } else {
    w.Null();
  }
  w.EndObject();
  return JsonResponse(http::status::ok, w.Take());
}

Response AdminApi::Pause(const std::string& destination, bool paused) {
  const std::shared_ptr<Dispatcher> found = dispatchers_.Find(destination);
  if (found == nullptr) {
    return JsonError(http::status::not_found, absl::StrCat("no destination ", destination));
  }
  if (auto s = found->SetManualPause(paused); !s.ok()) {
    return JsonError(http::status::service_unavailable, s.message());
  }
  return JsonResponse(http::status::ok, absl::StrCat(R"({"destination":")", destination,
                                                     R"(","paused":)", paused ? "true" : "false", "}"));
}

}  // namespace triage::daemon
