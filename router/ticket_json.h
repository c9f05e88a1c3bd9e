#pragma once

#include <string>

#include "router/json_writer.h"
#include "router/message.h"

namespace triage::router {

// Serialises a routed message as the JSON document that storage keeps and destinations receive
// (the "ticket"): the message, its author, and a "triage" object with scores, level, SLA
// deadline, teams, rule and reasons. The field names are a public contract (README).
std::string TicketJson(const RoutedMessage& routed);

// Writes the decision's fields (urgency, complaint, reach, reach_known, priority, level,
// sla_deadline, categories with their terms, team, informed, rule, tags, dropped and, when
// `with_reasons`, reasons) into the object `writer` has open. The ticket's "triage" object and
// `triagectl route` lines share it.
void WriteTriageFields(const RoutedMessage& routed, bool with_reasons, JsonWriter* writer);

}  // namespace triage::router
