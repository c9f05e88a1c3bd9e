#include "daemon/feedback.h"

#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/crypto.h"
#include "router/json_writer.h"

namespace triage::daemon {
namespace {

using simdjson::dom::element;

absl::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// A field that may be a JSON string or integer, as text; empty when absent or null.
absl::StatusOr<std::string> IdField(element root, const char* key) {
  element value;
  if (root[key].get(value) != simdjson::SUCCESS || value.is_null()) return std::string();
  std::string_view text;
  int64_t number = 0;
  uint64_t unsigned_number = 0;
  if (value.get(text) == simdjson::SUCCESS) return std::string(absl::StripAsciiWhitespace(Sv(text)));
  if (value.get(number) == simdjson::SUCCESS) return std::to_string(number);
  if (value.get(unsigned_number) == simdjson::SUCCESS) return std::to_string(unsigned_number);
  return absl::InvalidArgumentError(absl::StrCat(key, ": must be a string or an integer"));
}

}  // namespace

absl::StatusOr<TicketUpdate> ParseTicketUpdate(const router::DestinationType& type, absl::string_view body) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(body.data(), body.size()).get(root) != simdjson::SUCCESS || !root.is_object()) {
    return absl::InvalidArgumentError("the body must be a JSON object");
  }
  TicketUpdate update;
  absl::StatusOr<std::string> ticket = IdField(root, "ticket_id");
  if (!ticket.ok()) return ticket.status();
  if (ticket->empty()) return absl::InvalidArgumentError("ticket_id: is required");
  if (ticket->size() > 64) return absl::InvalidArgumentError("ticket_id: longer than 64 bytes");
  update.ticket = *std::move(ticket);

  absl::StatusOr<std::string> priority = IdField(root, "priority");
  if (!priority.ok()) return priority.status();
  if (!priority->empty() && *priority != "-") {
    update.level = type.PriorityLevel(*priority);
    if (!update.level) return absl::InvalidArgumentError(absl::StrCat("priority: unknown value '", *priority, "'"));
  }
  absl::StatusOr<std::string> group_id = IdField(root, "group_id");
  if (!group_id.ok()) return group_id.status();
  if (!group_id->empty()) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(*group_id, &id)) return absl::InvalidArgumentError("group_id: must be a number");
    update.group_id = id;
  }
  absl::StatusOr<std::string> group = IdField(root, "group");
  if (!group.ok()) return group.status();
  update.group = *std::move(group);

  element tags;
  if (root["tags"].get(tags) == simdjson::SUCCESS && !tags.is_null()) {
    std::string_view text;
    simdjson::dom::array array;
    if (tags.get(text) == simdjson::SUCCESS) {
      for (absl::string_view tag : absl::StrSplit(Sv(text), absl::ByAnyChar(" ,"), absl::SkipEmpty())) {
        update.tags.emplace_back(tag);
      }
    } else if (tags.get(array) == simdjson::SUCCESS) {
      for (element tag : array) {
        if (tag.get(text) != simdjson::SUCCESS) return absl::InvalidArgumentError("tags: must hold strings");
        update.tags.emplace_back(text);
      }
    } else {
      return absl::InvalidArgumentError("tags: must be a string or an array of strings");
    }
  }
  return update;
}

AgentLabel DeriveLabel(const TicketUpdate& update, const config::FeedbackOptions& feedback,
                       const config::DestinationOptions& destination, const std::vector<std::string>& teams) {
  AgentLabel label;
  label.level = update.level;
  if (update.group_id) {
    for (const auto& [team, id] : destination.group_ids) {
      if (id == *update.group_id) label.team = team;
    }
  } else if (!update.group.empty()) {
    for (const std::string& team : teams) {
      if (absl::EqualsIgnoreCase(team, update.group)) label.team = team;
    }
  }
  auto has = [&](const std::vector<std::string>& wanted) {
    return std::any_of(update.tags.begin(), update.tags.end(), [&](const std::string& tag) {
      return std::any_of(wanted.begin(), wanted.end(),
                         [&](const std::string& w) { return absl::EqualsIgnoreCase(w, tag); });
    });
  };
  // Both kinds of tag on one ticket contradict each other: no complaint label then.
  const bool yes = has(feedback.complaint_tags), no = has(feedback.not_complaint_tags);
  if (yes != no) label.complaint = yes;
  return label;
}

absl::StatusOr<std::string> LabelRecord(absl::string_view ticket_json, const AgentLabel& label,
                                        absl::string_view feedback, absl::string_view ticket,
                                        absl::Time labelled_at) {
  simdjson::dom::parser parser;
  element root;
  if (parser.parse(ticket_json.data(), ticket_json.size()).get(root) != simdjson::SUCCESS) {
    return absl::DataLossError("the stored ticket is not JSON");
  }
  router::JsonWriter w(ticket_json.size() + 256);
  w.BeginObject();
  for (const char* key : {"source", "id", "platform", "kind", "channel", "language", "text", "conversation_id",
                          "url", "created_at"}) {
    std::string_view value;
    if (root[key].get(value) == simdjson::SUCCESS) w.Key(key).String(Sv(value));
  }
  element author;
  if (root["author"].get(author) == simdjson::SUCCESS) {
    w.Key("author").BeginObject();
    for (const char* key : {"id", "handle", "name"}) {
      std::string_view value;
      if (author[key].get(value) == simdjson::SUCCESS) w.Key(key).String(Sv(value));
    }
    int64_t followers = 0;
    if (author["followers"].get(followers) == simdjson::SUCCESS) w.Key("followers").Int(followers);
    bool verified = false;
    if (author["verified"].get(verified) == simdjson::SUCCESS) w.Key("verified").Bool(verified);
    w.EndObject();
  }
  if (label.complaint) w.Key("complaint").Bool(*label.complaint);
  if (!label.team.empty()) w.Key("team").String(label.team);
  if (label.level) w.Key("level").String(router::LevelName(*label.level));
  w.Key("feedback").String(feedback);
  w.Key("ticket").String(ticket);
  w.Key("labelled_at").Time(labelled_at);
  element triage;
  if (root["triage"].get(triage) == simdjson::SUCCESS) {
    w.Key("triaged").BeginObject();
    bool complaint = false;
    if (triage["complaint"].get(complaint) == simdjson::SUCCESS) w.Key("complaint").Bool(complaint);
    for (const char* key : {"team", "level"}) {
      std::string_view value;
      if (triage[key].get(value) == simdjson::SUCCESS) w.Key(key).String(Sv(value));
    }
    w.EndObject();
  }
  w.EndObject();
  return w.Take();
}

Feedback::Feedback(std::shared_ptr<const Options> options, storage::Store& store, Metrics& metrics)
    : options_(std::move(options)), store_(store), metrics_(metrics) {}

std::shared_ptr<const Feedback::Options> Feedback::FromConfig(const config::Config& config) {
  auto options = std::make_shared<Options>();
  options->feedback = config.feedback;
  options->destinations = config.destinations;
  for (const config::TeamOptions& team : config.teams) options->teams.push_back(team.name);
  return options;
}

Response Feedback::Answer(absl::string_view name, http::status status, std::string body) {
  metrics_.feedback_requests.Add({{"feedback", std::string(name)}, {"status", std::to_string(static_cast<int>(status))}})
      .Increment();
  return status == http::status::ok ? JsonResponse(status, std::move(body)) : JsonError(status, body);
}

bool Feedback::Authentic(const config::FeedbackOptions& feedback, const Request& request) const {
  auto header = [&](absl::string_view name) {
    const auto it = request.find(beast::string_view(name.data(), name.size()));
    return it == request.end() ? absl::string_view() : ToAbsl(it->value());
  };
  const router::FeedbackAuth auth = feedback.type->feedback_auth();
  switch (auth.kind) {
    case router::FeedbackAuth::Kind::kNone:
      return false;
    case router::FeedbackAuth::Kind::kToken: {
      const absl::string_view token = header(feedback.token_header);
      return !token.empty() && ConstantTimeEquals(token, feedback.secret);
    }
    case router::FeedbackAuth::Kind::kHmacTimestamped:
      break;
  }
  const absl::string_view signature = header(auth.signature_header);
  const absl::string_view timestamp = header(auth.timestamp_header);
  if (signature.empty() || timestamp.empty()) return false;
  absl::Time signed_at;
  int64_t seconds = 0;
  std::string error;
  if (absl::SimpleAtoi(timestamp, &seconds)) {
    signed_at = absl::FromUnixSeconds(seconds);
  } else if (!absl::ParseTime(absl::RFC3339_full, std::string(timestamp), &signed_at, &error)) {
    return false;
  }
  if (absl::AbsDuration(absl::Now() - signed_at) > feedback.max_clock_skew) return false;  // a replay
  const std::string expected =
      absl::Base64Escape(HmacSha256(feedback.secret, absl::StrCat(timestamp, request.body())));
  return ConstantTimeEquals(signature, expected);
}

Response Feedback::Handle(absl::string_view path, const Request& request) {
  const std::shared_ptr<const Options> options = options_.load();
  const auto found = std::find_if(options->feedback.begin(), options->feedback.end(),
                                  [&](const config::FeedbackOptions& f) { return f.name == path; });
  if (found == options->feedback.end()) {
    return Answer("unknown", http::status::not_found, absl::StrCat("unknown feedback '", path, "'"));
  }
  const config::FeedbackOptions& feedback = *found;
  if (request.method() != http::verb::post) {
    Response response = Answer(feedback.name, http::status::method_not_allowed, "use POST");
    response.set(http::field::allow, "POST");
    return response;
  }
  if (!Authentic(feedback, request)) {
    metrics_.signature_failures.Add({{"source", feedback.name}}).Increment();
    spdlog::warn("event=feedback_refused feedback={} reason=signature", feedback.name);
    return Answer(feedback.name, http::status::unauthorized, "missing or wrong signature or token");
  }
  absl::StatusOr<TicketUpdate> update = ParseTicketUpdate(*feedback.type, request.body());
  if (!update.ok()) return Answer(feedback.name, http::status::bad_request, std::string(update.status().message()));
  auto count = [&](const char* outcome) {
    metrics_.feedback_labels.Add({{"feedback", feedback.name}, {"outcome", outcome}}).Increment();
  };
  absl::StatusOr<storage::TicketOrigin> origin = store_.FindTicketOrigin(feedback.destination, update->ticket);
  if (absl::IsNotFound(origin.status())) {
    count("unknown_ticket");
    return Answer(feedback.name, http::status::ok, R"({"labelled":0,"reason":"not a ticket triaged created"})");
  }
  if (!origin.ok()) {
    spdlog::error("event=feedback_store_failed feedback={} error=\"{}\"", feedback.name,
                  std::string(origin.status().message()));
    Response response = Answer(feedback.name, http::status::service_unavailable, "storage unavailable");
    response.set(http::field::retry_after, "5");
    return response;
  }
  const auto destination = std::find_if(options->destinations.begin(), options->destinations.end(),
                                        [&](const config::DestinationOptions& d) { return d.name == feedback.destination; });
  const AgentLabel label = DeriveLabel(*update, feedback, *destination, options->teams);
  if (label.empty()) {
    count("no_label");
    return Answer(feedback.name, http::status::ok, R"({"labelled":0,"reason":"no priority, group or tag that maps to a label"})");
  }
  absl::StatusOr<std::string> record =
      LabelRecord(origin->ticket_json, label, feedback.name, update->ticket, absl::Now());
  absl::Status stored = record.ok() ? store_.PutLabel(origin->message_key, *record) : record.status();
  if (!stored.ok()) {
    spdlog::error("event=feedback_store_failed feedback={} error=\"{}\"", feedback.name, std::string(stored.message()));
    Response response = Answer(feedback.name, http::status::service_unavailable, "storage unavailable");
    response.set(http::field::retry_after, "5");
    return response;
  }
  count("stored");
  spdlog::info("event=label_stored feedback={} ticket={} team={} level={} complaint={}", feedback.name,
               update->ticket, label.team.empty() ? "-" : label.team,
               label.level ? std::string(router::LevelName(*label.level)) : "-",
               label.complaint ? (*label.complaint ? "yes" : "no") : "-");
  return Answer(feedback.name, http::status::ok, R"({"labelled":1})");
}

}  // namespace triage::daemon
