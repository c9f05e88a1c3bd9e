// file: one JSON line per delivery (the event a webhook would carry), appended and synced by the
// daemon before the delivery is acknowledged. The newcomer's and the tests' helpdesk.
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"

namespace triage::router {
namespace {

class FileDestination : public DestinationType {
 public:
  std::string_view name() const override { return "file"; }
  Transport transport() const override { return Transport::kFile; }
  std::vector<Setting> settings() const override {
    return {{.key = "path", .kind = Setting::Kind::kString, .required = true}};
  }
  // The lines of concurrent workers share one write and one fdatasync (group commit), their
  // leases one lock and their acks one write batch: the more workers, the larger the groups
  // (bench/drain.sh: a backlog drains about a quarter faster with 256 than with 64).
  DestinationDefaults defaults() const override { return {.join_informed = false, .concurrency = 256}; }
  bool reads_tickets() const override { return false; }
  // Acknowledgements too, whatever the platform: the line is what would have been sent.
  bool sends_replies() const override { return true; }
  std::string ReplyProblem(const ReplyTarget&) const override { return ""; }
  absl::StatusOr<OutboundRequest> Render(const DestinationView&, const TicketView*,
                                         const DeliveryContext& context) const override {
    OutboundRequest line;
    line.body = EventBody(context);
    return line;
  }
};

}  // namespace

const DestinationType& FileDestinationType() {
  static const FileDestination type;
  return type;
}

}  // namespace triage::router
