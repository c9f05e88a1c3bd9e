#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"
#include "daemon/delivery.h"
#include "daemon/http.h"
#include "storage/store.h"

namespace triage::daemon {

// The /v1 admin API, JSON over the admin listener, behind a bearer token (admin.token):
//   GET  /v1/queues                               depth, oldest entry, SLA at risk and overdue
//                                                 per team and level; pause and breaker state
//                                                 per destination (and the destinations no
//                                                 longer configured that still hold entries)
//   GET  /v1/dead-letters[?destination=D&limit=N] dead letters, oldest first (limit 100, max 1000)
//   POST /v1/dead-letters/requeue                 {"destination":D,"seq":N} or {"destination":D,"all":true}
//   POST /v1/destinations/D/pause | /resume       an operator's pause, kept across restarts
//   GET  /v1/messages/SOURCE/ID                   one message: status, ticket (team, informed,
//                                                 scores, reasons), each delivery's state, queue
//                                                 position, attempts and last error, remote
//                                                 tickets, and the agent's label if any
//   GET  /v1/labels[?after=CURSOR&limit=N]         label records (feedback), key order, pages of
//                                                 up to 5000; "next" is the following page's cursor
//   GET  /v1/quarantine[?after=ID&limit=N]          requests the parser could not read, oldest first
//   GET  /v1/quarantine/ID                         one of them with its body
//   POST /v1/quarantine/replay                     {"id":N} or {"all":true}: parsed again and routed
//                                                 (App::Admin: it needs the ingest)
// Reads answer without the token when admin.read_without_token is set. Without a configured
// token the API changes nothing (403). 401 carries WWW-Authenticate: Bearer. Storage read
// errors answer 503. Handle reads and writes storage (synced): call it on the blocking pool.
class AdminApi {
 public:
  AdminApi(const config::AdminOptions& options, storage::Store& store, const Dispatchers& dispatchers);

  // nullopt when the target is not under /v1.
  std::optional<Response> Handle(const Request& request);
  // The answer refusing `request` (401, 403), or nullopt when its token allows it.
  std::optional<Response> Refused(const Request& request, bool read_only) const;
  // The quarantined requests a replay body names, {"id":N} or {"all":true} (up to 100, the
  // oldest), or the error answer.
  absl::StatusOr<std::vector<storage::Store::Quarantined>> ReplayItems(const std::string& body);

 private:
  Response Queues();
  Response DeadLetters(absl::string_view target);  // the request target, query included
  Response Requeue(const std::string& body);
  Response Pause(const std::string& destination, bool paused);
  Response Message(absl::string_view source, absl::string_view id);
  Response Labels(absl::string_view target);
  Response Quarantine(absl::string_view target);
  Response QuarantineItem(uint64_t id);

  const config::AdminOptions options_;
  storage::Store& store_;
  const Dispatchers& dispatchers_;
};

}  // namespace triage::daemon
