// webhook: Standard Webhooks (https://www.standardwebhooks.com/). The body is the delivery's
// event; the daemon signs each attempt (webhook-id is the stable delivery id,
// webhook-timestamp this attempt, webhook-signature v1 HMAC-SHA256 over "id.timestamp.body").
#include "absl/strings/escaping.h"
#include "absl/strings/strip.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/ticket_parts.h"

namespace triage::router {
namespace {

class WebhookDestination : public DestinationType {
 public:
  std::string_view name() const override { return "webhook"; }
  std::vector<Setting> settings() const override {
    return {{.key = "secret", .kind = Setting::Kind::kSecret, .required = true}};
  }
  std::vector<std::pair<std::string, std::string>> Validate(const Settings& settings) const override {
    const std::string& secret = settings.Get("secret");
    std::string key;
    if (!secret.empty() &&
        (!absl::Base64Unescape(absl::StripPrefix(secret, "whsec_"), &key) || key.size() < 24 || key.size() > 64)) {
      return {{"secret",
               "must be whsec_ followed by the base64 of 24 to 64 random bytes "
               "(e.g. echo whsec_$(openssl rand -base64 32))"}};
    }
    return {};
  }
  DestinationDefaults defaults() const override { return {.join_informed = false}; }
  bool url_is_base() const override { return false; }
  RequestSigning Signing(const Settings& settings) const override {
    return {RequestSigning::Kind::kStandardWebhooks, settings.Get("secret")};
  }
  bool reads_tickets() const override { return false; }
  // Acknowledgements too (acknowledgement.sent events): the receiver sends them on.
  bool sends_replies() const override { return true; }
  std::string ReplyProblem(const ReplyTarget&) const override { return ""; }
  absl::StatusOr<OutboundRequest> Render(const DestinationView&, const TicketView*,
                                         const DeliveryContext& context) const override {
    OutboundRequest request;
    request.body = EventBody(context);
    return request;
  }
};

}  // namespace

const DestinationType& WebhookDestinationType() {
  static const WebhookDestination type;
  return type;
}

}  // namespace triage::router
