// slack: an incoming webhook (https://api.slack.com/messaging/webhooks). {"text": ...} in
// mrkdwn, at most 3000 characters, links unfurled by nobody. The URL is its own credential.
// With `ticket_link`, an alert ends with a link to the thread's ticket in that helpdesk.
// Slack allows about one message a second per webhook.
#include "absl/strings/str_cat.h"
#include "router/destinations/destination_type.h"
#include "router/json_writer.h"

namespace triage::router {
namespace {

constexpr size_t kSlackTextMax = 3000;  // Slack's limit for a section's text

// The first `max` bytes of escaped mrkdwn, ending in "…": never inside a UTF-8 character or an
// entity the escaping wrote (&amp; &lt; &gt;).
std::string Cut(const std::string& text, size_t max) {
  size_t cut = max - 3;  // room for the ellipsis
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  const size_t amp = text.rfind('&', cut - 1);
  if (amp != std::string::npos && cut - amp < 5 && text.find(';', amp) >= cut) cut = amp;
  return absl::StrCat(text.substr(0, cut), "…");
}

class SlackDestination : public DestinationType {
 public:
  std::string_view name() const override { return "slack"; }
  std::vector<Setting> settings() const override { return {}; }
  DestinationDefaults defaults() const override {
    return {.concurrency = 1,
            .rate = 1,
            .burst = 3,
            .body_template = "*[{{level}}]* {{team}} ({{role}}): {{platform}} {{kind}} from {{author}} "
                             "({{followers}} followers)\n> {{text_short}}\n{{url}}"};
  }
  TicketKeys ticket_keys() const override { return {.body = true, .ticket_link = true}; }
  bool url_is_base() const override { return false; }
  absl::StatusOr<OutboundRequest> Render(const DestinationView& destination, const TicketView* ticket,
                                         const DeliveryContext& context) const override {
    std::string text =
        destination.templates.body.Render(*ticket, context.team, context.owner, Template::Escape::kSlack);
    // The link to the helpdesk ticket goes last, after the cut, so that it is never cut.
    std::string link;
    if (!context.linked_ticket_url.empty()) {
      link = "\nTicket: <";
      AppendEscaped(context.linked_ticket_url, Template::Escape::kSlack, &link);
      link += ">";
    }
    if (text.size() + link.size() > kSlackTextMax) text = Cut(text, kSlackTextMax - link.size());
    text += link;
    JsonWriter w;
    w.BeginObject().Key("text").String(text).Key("unfurl_links").Bool(false).EndObject();
    OutboundRequest request;
    request.body = w.Take();
    return request;
  }
};

}  // namespace

const DestinationType& SlackDestinationType() {
  static const SlackDestination type;
  return type;
}

}  // namespace triage::router
