#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "router/destinations/destination_type.h"

namespace triage::router {

// Each folder of router/destinations/ defines one of these.
const DestinationType& FileDestinationType();
const DestinationType& WebhookDestinationType();
const DestinationType& ZendeskDestinationType();
const DestinationType& FreshdeskDestinationType();
const DestinationType& SlackDestinationType();
const DestinationType& HubSpotDestinationType();
const DestinationType& RtDestinationType();
const DestinationType& JsmDestinationType();
const DestinationType& XDestinationType();
const DestinationType& MetaDestinationType();
const DestinationType& WhatsAppDestinationType();

const std::vector<const DestinationType*>& DestinationTypes() {
  static const std::vector<const DestinationType*> types = {
      &FileDestinationType(),
      &WebhookDestinationType(),
      &ZendeskDestinationType(),
      &FreshdeskDestinationType(),
      &SlackDestinationType(),
      &HubSpotDestinationType(),
      &RtDestinationType(),
      &JsmDestinationType(),
      &XDestinationType(),
      &MetaDestinationType(),
      &WhatsAppDestinationType(),
  };
  return types;
}

const DestinationType* FindDestinationType(std::string_view name) {
  for (const DestinationType* type : DestinationTypes()) {
    if (type->name() == name) return type;
  }
  return nullptr;
}

std::string DestinationTypeNames(bool (*filter)(const DestinationType&)) {
  std::vector<std::string> names;
  for (const DestinationType* type : DestinationTypes()) {
    if (filter == nullptr || filter(*type)) names.emplace_back(type->name());
  }
  return absl::StrJoin(names, ", ");
}

std::optional<int64_t> DestinationView::GroupOf(const std::string& team) const {
  const auto found = group_ids.find(team);
  if (found == group_ids.end()) return std::nullopt;
  return found->second;
}

std::vector<std::string> DestinationView::InformedWatchers(const TicketView& ticket, const std::string& owner_team) const {
  std::vector<std::string> out;
  if (!join_informed || watchers == nullptr) return out;
  for (const std::string& team : ticket.informed) {
    if (team == owner_team) continue;
    const auto found = watchers->find(team);
    if (found == watchers->end()) continue;
    for (const std::string& user : found->second) {
      if (std::find(out.begin(), out.end(), user) == out.end()) out.push_back(user);
    }
  }
  return out;
}

absl::StatusOr<TicketTemplates> CompileTemplates(const std::string& subject, const std::string& body,
                                                 const std::string& follow_up,
                                                 const std::vector<std::pair<std::string, std::string>>& custom_fields,
                                                 const DestinationType& type, const Settings& settings) {
  TicketTemplates t;
  auto compile = [](absl::string_view what, const std::string& text, Template* out) -> absl::Status {
    absl::StatusOr<Template> parsed = Template::Parse(text);
    if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(what, ": ", parsed.status().message()));
    *out = *std::move(parsed);
    return absl::OkStatus();
  };
  if (auto s = compile("subject", subject, &t.subject); !s.ok()) return s;
  if (auto s = compile("body", body, &t.body); !s.ok()) return s;
  if (auto s = compile("follow_up", follow_up, &t.follow_up); !s.ok()) return s;
  for (const auto& [key, text] : custom_fields) {
    Template field;
    if (auto s = compile(key, text, &field); !s.ok()) return s;
    t.custom_fields.emplace_back(key, std::move(field));
  }
  for (const Setting& setting : type.settings()) {
    if (setting.kind != Setting::Kind::kTemplate) continue;
    if (auto s = compile(setting.key, settings.Get(setting.key), &t.settings[setting.key]); !s.ok()) return s;
  }
  return t;
}

}  // namespace triage::router
