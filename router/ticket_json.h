#pragma once

#include <string>

#include "router/message.h"

namespace triage::router {

// Serialises a routed message as the JSON document that storage keeps and destinations receive
// (the "ticket"): the message, its author, and a "triage" object with scores, level, SLA
// deadline, teams, rule and reasons. The field names are a public contract (README).
std::string TicketJson(const RoutedMessage& routed);

}  // namespace triage::router
