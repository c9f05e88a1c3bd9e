// meta: acknowledgements through Meta's Graph API with a Page access token (the `url` names the
// version: https://graph.facebook.com/v25.0).
//   - A Messenger or Instagram DM is answered by the Send API (POST /me/messages, messaging_type
//     RESPONSE, inside the 24-hour window), the delivery id in message.metadata (echoed back).
//   - A Facebook comment or post gets a public comment reply (POST /{id}/comments).
//   - An Instagram top-level comment gets a public reply (POST /{id}/replies).
//   - With `comment_replies: private`, comments get the private reply instead (POST
//     /me/messages to recipient.comment_id): Meta allows one per comment, ever, so by default
//     it is left to agents.
// Errors come as {"error": {"code", "error_subcode", ...}} and are read by ClassifyGraphError:
// the closed window (code 10) and a person who cannot be reached (551) are final.
// Facts: ../shared/reference/outbound-replies.md §2.
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/destinations/reply_parts.h"
#include "router/destinations/ticket_parts.h"
#include "router/json_writer.h"
#include "router/text.h"

namespace triage::router {
namespace {

constexpr int64_t kMessengerLimit = 2000;   // characters
constexpr int64_t kInstagramLimit = 1000;   // bytes of UTF-8
constexpr int64_t kCommentLimit = 8000;     // characters; Graph documents no lower bound for a reply

class MetaDestination : public DestinationType {
 public:
  std::string_view name() const override { return "meta"; }
  std::vector<Setting> settings() const override {
    return {{.key = "page_token", .kind = Setting::Kind::kSecret, .required = true},
            {.key = "app_secret", .kind = Setting::Kind::kSecret},
            {.key = "comment_replies", .default_value = "public", .allowed = {"public", "private"}}};
  }
  // With the app secret, every call carries appsecret_proof (apps with "Require App Secret").
  RequestSigning Signing(const Settings& settings) const override {
    if (!settings.Has("app_secret")) return {};
    return {RequestSigning::Kind::kAppSecretProof, settings.Get("app_secret"), settings.Get("page_token")};
  }
  // The Send API allows 300 calls a second per Page; a reply a second is plenty for
  // acknowledgements and stays far from Business Use Case throttling.
  DestinationDefaults defaults() const override { return {.concurrency = 1, .rate = 1, .burst = 5}; }

  bool replies_only() const override { return true; }
  std::string ReplyProblem(const ReplyTarget& target) const override {
    if (target.platform == "messenger" || (target.platform == "instagram" && target.kind == "direct_message")) {
      return target.kind == "direct_message" ? "" : "a Messenger reply answers direct messages";
    }
    if (target.platform == "facebook") return "";
    if (target.platform == "instagram") {
      return target.kind == "comment" ? "" : "Instagram takes public replies to top-level comments only";
    }
    return absl::StrCat("meta answers Messenger, Instagram and Facebook messages, not ", target.platform);
  }

  absl::StatusOr<OutboundRequest> Render(const DestinationView& destination, const TicketView* ticket,
                                         const DeliveryContext& context) const override {
    if (!context.reply_text) return absl::InvalidArgumentError("meta sends acknowledgements only");
    const std::string problem = ReplyProblem({ticket->platform, ticket->kind, ticket->channel});
    if (!problem.empty()) return absl::InvalidArgumentError(problem);
    const std::string token = absl::StrCat("access_token=", PercentEncode(destination.settings.Get("page_token")));
    OutboundRequest request;
    JsonWriter w;
    w.BeginObject();
    if (ticket->kind == "direct_message") {
      if (ticket->author_id.empty()) return absl::InvalidArgumentError("the message names no sender to answer");
      request.target = absl::StrCat("/me/messages?", token);
      const bool instagram = ticket->platform == "instagram";
      w.Key("recipient").BeginObject().Key("id").String(ticket->author_id).EndObject();
      w.Key("messaging_type").String("RESPONSE");
      w.Key("message").BeginObject();
      w.Key("text").String(instagram ? FitText(*context.reply_text, kInstagramLimit, TextMeasure::kBytes)
                                     : FitText(*context.reply_text, kMessengerLimit, TextMeasure::kCodePoints));
      w.Key("metadata").String(context.delivery_id);  // comes back in the echo webhook
      w.EndObject();
    } else if (destination.settings.Get("comment_replies") == "private") {
      // The one private reply Meta allows per comment (within 7 days), as a DM.
      request.target = absl::StrCat("/me/messages?", token);
      const bool instagram = ticket->platform == "instagram";
      w.Key("recipient").BeginObject().Key(ticket->kind == "post" ? "post_id" : "comment_id").String(ticket->id).EndObject();
      w.Key("message").BeginObject();
      w.Key("text").String(instagram ? FitText(*context.reply_text, kInstagramLimit, TextMeasure::kBytes)
                                     : FitText(*context.reply_text, kMessengerLimit, TextMeasure::kCodePoints));
      w.EndObject();
    } else {
      const char* edge = ticket->platform == "instagram" ? "replies" : "comments";
      request.target = absl::StrCat("/", PercentEncode(ticket->id), "/", edge, "?", token);
      w.Key("message").String(FitText(*context.reply_text, kCommentLimit, TextMeasure::kCodePoints));
    }
    w.EndObject();
    request.body = w.Take();
    return request;
  }

  absl::StatusOr<std::string> ReplyId(absl::string_view answer) const override {
    absl::StatusOr<std::string> id = AnswerId(answer, nullptr, "message_id");
    if (id.ok()) return id;
    return AnswerId(answer, nullptr, "id");
  }

  std::optional<AnswerClass> ClassifyAnswer(int status, absl::string_view body, const HeaderReader&,
                                            absl::Time) const override {
    if (status >= 200 && status < 300) return std::nullopt;
    return ClassifyGraphError(status, body);
  }
};

}  // namespace

const DestinationType& MetaDestinationType() {
  static const MetaDestination type;
  return type;
}

}  // namespace triage::router
