#include "daemon/acknowledge.h"

#include <algorithm>
#include <cmath>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "daemon/crypto.h"
#include "daemon/delivery.h"
#include "router/ticket_template.h"

namespace triage::daemon {
namespace {

// Triaged's own deliveries estimate a team's pace once it has this many in the last hour, over
// at least kMinSpan (a burst of five in a second is not 18,000 an hour).
constexpr size_t kMinDeliveries = 5;
constexpr absl::Duration kMinSpan = absl::Minutes(5);
constexpr absl::Duration kPaceWindow = absl::Hours(1);
constexpr size_t kMaxRemembered = 100'000;  // deliveries remembered per team, at most

template <typename List, typename Value>
bool Has(const List& list, const Value& value) {
  return absl::c_linear_search(list, value);
}

}  // namespace

const config::DestinationOptions* WhichReplyDestination(
    const config::AcknowledgeOptions& acknowledge, const std::vector<const config::DestinationOptions*>& via,
    const router::RoutedMessage& routed, const std::vector<std::string>& brand_ids) {
  const router::Message& m = routed.message;
  const router::Triage& t = routed.triage;
  if (t.dropped || m.author.id.empty() || m.author.id == m.account_id || Has(brand_ids, m.author.id)) return nullptr;
  if (t.acknowledge == false) return nullptr;  // a rule said never
  if (!t.acknowledge) {                        // a rule saying yes overrides the block's conditions
    if (!acknowledge.levels.empty() && !Has(acknowledge.levels, t.level)) return nullptr;
    if (acknowledge.complaint && *acknowledge.complaint != t.complaint) return nullptr;
    if (!Has(acknowledge.channels, m.channel)) return nullptr;
    if (!acknowledge.platforms.empty() && !Has(acknowledge.platforms, m.platform)) return nullptr;
  }
  for (const config::DestinationOptions* d : via) {
    if (d->type->ReplyProblem({m.platform, m.kind, m.channel}).empty()) return d;
  }
  return nullptr;
}

std::string WaitInWords(absl::Duration wait) {
  const double minutes = absl::ToDoubleMinutes(wait);
  if (minutes <= 15) return "within 15 minutes";
  if (minutes <= 55) return absl::StrCat("in about ", static_cast<int>(std::ceil(minutes / 10) * 10), " minutes");
  if (minutes <= 90) return "in about an hour";
  const double hours = minutes / 60;
  if (hours <= 24) return absl::StrCat("within ", static_cast<int>(std::ceil(hours)), " hours");
  return absl::StrCat("within ", static_cast<int>(std::ceil(hours / 24)), " days");
}

std::string OpensAt(const router::TimeWindow& hours, absl::Time now) {
  const absl::CivilDay today = absl::ToCivilDay(now, hours.zone);
  for (int offset = 0; offset <= 7; ++offset) {
    const absl::CivilDay day = today + offset;
    if (!hours.days.empty() && !Has(hours.days, absl::GetWeekday(day))) continue;
    const absl::Time opens = absl::FromCivil(absl::CivilMinute(day) + hours.from_minute, hours.zone);
    if (opens <= now) continue;
    return absl::FormatTime(offset == 0 ? "%H:%M %Z" : "%A %H:%M %Z", opens, hours.zone);
  }
  return "";  // no opening day listed: the config has none (LoadTimeWindow refuses unknown days)
}

Acknowledger::Acknowledger(storage::Store& store, const Dispatchers& dispatchers)
    : store_(store), dispatchers_(dispatchers) {}

void Acknowledger::Update(const config::Config& config) {
  std::map<std::string, std::shared_ptr<const Team>> teams;
  for (const config::TeamOptions& options : config.teams) {
    if (!options.acknowledge) continue;
    auto team = std::make_shared<Team>();
    team->options = *options.acknowledge;
    // Checked when the config loaded.
    team->text = router::Template::Parse(team->options.text, config::kAcknowledgeFields).value();
    team->closed_text = router::Template::Parse(team->options.closed_text, config::kAcknowledgeFields).value();
    team->fallback = router::Template::Parse(team->options.fallback, config::kAcknowledgeFields).value();
    const config::DestinationOptions* first = nullptr;
    for (const std::string& name : options.destinations) {
      for (const config::DestinationOptions& d : config.destinations) {
        if (d.name != name) continue;
        if (first == nullptr) first = &d;
        if (d.type->keeps_tickets() && (first == nullptr || !first->type->keeps_tickets())) first = &d;
      }
    }
    if (first != nullptr) {
      team->ticket_destination = first->name;
      team->counts = first->type->keeps_tickets() && first->count_interval > absl::ZeroDuration();
      team->count_max_age = std::max(3 * first->count_interval, absl::Minutes(10));
    }
    teams[options.name] = std::move(team);
  }
  absl::MutexLock lock(&mu_);
  any_team_ = !teams.empty();
  teams_ = std::move(teams);
}

std::shared_ptr<const Acknowledger::Team> Acknowledger::FindTeam(const std::string& team) const {
  absl::MutexLock lock(&mu_);
  const auto found = teams_.find(team);
  return found == teams_.end() ? nullptr : found->second;
}

void Acknowledger::Delivered(const std::string& destination, const std::string& team, absl::Time at) {
  if (!any_team_.load(std::memory_order_relaxed)) return;  // the common case: no lock per delivery
  absl::MutexLock lock(&mu_);
  const auto found = teams_.find(team);
  if (found == teams_.end() || found->second->ticket_destination != destination) return;
  std::deque<absl::Time>& times = delivered_[team];
  times.push_back(at);
  while (!times.empty() && (times.front() < at - kPaceWindow || times.size() > kMaxRemembered)) times.pop_front();
}

std::optional<double> Acknowledger::TicketsPerHour(const std::string& team, absl::Time now) const {
  const std::shared_ptr<const Team> t = FindTeam(team);
  if (t == nullptr) return std::nullopt;
  // The helpdesk's own count of what its agents solved in the last hour, when it tells.
  if (t->counts) {
    if (const std::shared_ptr<Dispatcher> helpdesk = dispatchers_.Find(t->ticket_destination)) {
      const std::optional<Dispatcher::OpenCount> counted = helpdesk->OpenTickets(team);
      if (counted && counted->solved_last_hour && *counted->solved_last_hour > 0 &&
          now - counted->counted_at <= t->count_max_age) {
        return static_cast<double>(*counted->solved_last_hour);
      }
    }
  }
  {
    absl::MutexLock lock(&mu_);
    std::deque<absl::Time>& times = delivered_[team];
    while (!times.empty() && times.front() < now - kPaceWindow) times.pop_front();
    if (times.size() >= kMinDeliveries) {
      const absl::Duration span = std::max(now - times.front(), kMinSpan);
      return static_cast<double>(times.size()) / absl::ToDoubleHours(span);
    }
  }
  if (t->options.tickets_per_hour > 0) return t->options.tickets_per_hour;
  return std::nullopt;
}

std::optional<int64_t> Acknowledger::Ahead(const std::string& team, const std::string& message_key,
                                           absl::Time now) const {
  const std::shared_ptr<const Team> t = FindTeam(team);
  if (t == nullptr || t->ticket_destination.empty()) return std::nullopt;
  const std::vector<storage::MessageDelivery> deliveries = store_.Deliveries(message_key);
  const auto ticket = absl::c_find_if(deliveries, [&](const storage::MessageDelivery& d) {
    return d.destination == t->ticket_destination && d.entry.owner && !d.entry.reply;
  });
  if (ticket == deliveries.end()) return std::nullopt;
  int64_t in_triaged = 0;
  if (ticket->state == "queued" && ticket->position > 0) {
    in_triaged = ticket->position - 1;
  } else if (ticket->state != "delivered" && ticket->state != "in_flight") {
    return std::nullopt;  // retrying, waiting behind its thread, dead: no honest figure
  }
  const std::shared_ptr<Dispatcher> helpdesk = dispatchers_.Find(t->ticket_destination);
  if (helpdesk == nullptr) return std::nullopt;
  if (!helpdesk->options().type->keeps_tickets()) return in_triaged;  // nothing waits there
  if (!t->counts) return std::nullopt;
  const std::optional<Dispatcher::OpenCount> open = helpdesk->OpenTickets(team);
  if (!open || now - open->counted_at > t->count_max_age) return std::nullopt;
  int64_t waiting = open->count;
  // A ticket created before the count is one of the open ones: not ahead of itself.
  if (ticket->state == "delivered" && ticket->delivered_at <= open->counted_at) waiting = std::max<int64_t>(0, waiting - 1);
  return in_triaged + waiting;
}

Acknowledger::Plan Acknowledger::Compose(const storage::Lease& lease,
                                         const std::optional<storage::ThreadTicket>& last_reply,
                                         absl::Time now) const {
  Plan plan;
  absl::StatusOr<router::TicketView> ticket = router::ParseTicketView(lease.entry.ticket_json);
  if (!ticket.ok()) {
    plan.skipped = "unreadable";
    plan.detail = absl::StrCat("stored ticket unreadable: ", ticket.status().message());
    return plan;
  }
  plan.platform = ticket->platform;
  const std::string& team_name = lease.entry.team;
  const std::shared_ptr<const Team> team = FindTeam(team_name);
  if (team == nullptr) {
    plan.skipped = "off";
    plan.detail = absl::StrCat("team ", team_name, " no longer acknowledges messages");
    return plan;
  }
  const absl::Time arrived = absl::FromUnixMillis(lease.entry.enqueued_unix_ms);
  if (now - arrived > team->options.max_delay) {
    plan.skipped = "too_late";
    plan.detail = absl::StrCat("not sent within max_delay (", absl::FormatDuration(team->options.max_delay),
                               ") of the message");
    return plan;
  }
  if (last_reply && team->options.once_per > absl::ZeroDuration() &&
      now - last_reply->recorded_at < team->options.once_per) {
    plan.skipped = "already_acknowledged";
    plan.detail = absl::StrCat("the conversation was acknowledged at ",
                               absl::FormatTime(absl::RFC3339_sec, last_reply->recorded_at, absl::UTCTimeZone()),
                               " (", last_reply->id, ")");
    return plan;
  }
  router::Template::Values values;
  values["reference"] = absl::AsciiStrToUpper(absl::BytesToHexString(Sha256(lease.entry.message_key).substr(0, 3)));
  const bool closed = team->options.hours && !team->options.hours->Contains(now);
  if (closed) values["opens_at"] = OpensAt(*team->options.hours, now);
  if (const std::optional<int64_t> ahead = Ahead(team_name, lease.entry.message_key, now)) {
    values["ahead"] = std::to_string(*ahead);
    values["position"] = std::to_string(*ahead + 1);
    if (const std::optional<double> pace = TicketsPerHour(team_name, now); pace && *pace > 0) {
      values["expected_wait"] = WaitInWords(absl::Hours(static_cast<double>(*ahead + 1) / *pace));
    }
  }
  const router::Template* chosen = closed ? &team->closed_text : &team->text;
  if (absl::c_any_of(config::kAcknowledgeFigures,
                     [&](const std::string& f) { return chosen->Uses(f) && !values.contains(f); })) {
    chosen = &team->fallback;  // a figure it names is unknown: never invent one
  }
  plan.text = chosen->Render(*ticket, team_name, true, router::Template::Escape::kNone, &values);
  return plan;
}

}  // namespace triage::daemon
