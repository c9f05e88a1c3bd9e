// whatsapp: acknowledgements through the WhatsApp Cloud API (POST /{phone_number_id}/messages,
// Bearer token; the `url` names the version: https://graph.facebook.com/v25.0). A text in
// answer to the customer's message (context.message_id), inside the 24-hour customer-service
// window; after it only approved templates may be sent, so 131047 is final. A 200 means
// accepted, not delivered: failures can still arrive in status webhooks.
// Facts: ../shared/reference/outbound-replies.md §3.
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/reply_parts.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"
#include "router/text.h"

namespace triage::router {
namespace {

constexpr int64_t kTextLimit = 4096;  // characters [secondary]

class WhatsAppDestination : public DestinationType {
 public:
  std::string_view name() const override { return "whatsapp"; }
  std::vector<Setting> settings() const override {
    return {{.key = "access_token", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "phone_number_id", .kind = Setting::Kind::kString, .required = true},
            {.key = "app_secret", .kind = Setting::Kind::kSecret}};
  }
  // With the app secret, every call carries appsecret_proof (apps with "Require App Secret").
  RequestSigning Signing(const Settings& settings) const override {
    if (!settings.Has("app_secret")) return {};
    return {RequestSigning::Kind::kAppSecretProof, settings.Get("app_secret"), settings.Get("access_token")};
  }
  // 80 messages a second per number by default; about one every 6 s to one person.
  DestinationDefaults defaults() const override { return {.concurrency = 2, .rate = 10, .burst = 10}; }
  std::string Authorization(const Settings& settings) const override {
    return absl::StrCat("Bearer ", settings.Get("access_token"));
  }

  bool replies_only() const override { return true; }
  std::string ReplyProblem(const ReplyTarget& target) const override {
    if (target.platform != "whatsapp") return absl::StrCat("whatsapp answers WhatsApp messages, not ", target.platform);
    return "";
  }

  absl::StatusOr<OutboundRequest> Render(const DestinationView& destination, const TicketView* ticket,
                                         const DeliveryContext& context) const override {
    if (!context.reply_text) return absl::InvalidArgumentError("whatsapp sends acknowledgements only");
    const std::string problem = ReplyProblem({ticket->platform, ticket->kind, ticket->channel});
    if (!problem.empty()) return absl::InvalidArgumentError(problem);
    if (ticket->author_id.empty()) return absl::InvalidArgumentError("the message names no sender to answer");
    OutboundRequest request;
    request.target = absl::StrCat("/", PercentEncode(destination.settings.Get("phone_number_id")), "/messages");
    JsonWriter w;
    w.BeginObject();
    w.Key("messaging_product").String("whatsapp");
    w.Key("recipient_type").String("individual");
    w.Key("to").String(ticket->author_id);
    w.Key("type").String("text");
    if (!ticket->id.empty()) w.Key("context").BeginObject().Key("message_id").String(ticket->id).EndObject();
    w.Key("text").BeginObject();
    w.Key("body").String(FitText(*context.reply_text, kTextLimit, TextMeasure::kCodePoints));
    w.Key("preview_url").Bool(false);
    w.EndObject();
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  absl::StatusOr<std::string> ReplyId(absl::string_view answer) const override {
    absl::StatusOr<std::optional<std::string>> id = FirstIdOf(answer, "messages");
    if (!id.ok()) return id.status();
    if (!id->has_value()) return absl::InvalidArgumentError("the answer lists no message");
    return **id;
  }

  std::optional<AnswerClass> ClassifyAnswer(int status, absl::string_view body, const HeaderReader&,
                                            absl::Time) const override {
    if (status >= 200 && status < 300) return std::nullopt;
    return ClassifyGraphError(status, body);
  }
};

}  // namespace

const DestinationType& WhatsAppDestinationType() {
  static const WhatsAppDestination type;
  return type;
}

}  // namespace triage::router
