#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace triage::router {

// The parts of a stored ticket (TicketJson) that helpdesk requests are made of.
struct TicketView {
  std::string source, id, platform, kind, channel, text, language, url, created_at, conversation_id;
  std::string author_id, author_handle, author_name;
  std::optional<int64_t> followers;
  bool verified = false;
  int64_t urgency = 0;
  std::optional<int64_t> reach;
  bool complaint = false;
  bool dropped = false;
  std::string level, team, rule, sla_deadline;
  std::vector<std::string> informed, tags, categories, reasons;

  // "@handle", else the name, else the platform id.
  std::string Author() const;
  // "Name (@handle)" when both are known, else what Author() says.
  std::string FullAuthor() const;
};

// The triage.sla_deadline of a stored ticket; nullopt when it has none.
std::optional<absl::Time> SlaDeadline(absl::string_view ticket_json);

// Reads a ticket written by TicketJson; InvalidArgument when it is not one.
absl::StatusOr<TicketView> ParseTicketView(absl::string_view ticket_json);

// Subject and body templates: text with {{field}} placeholders. The fields are
//   text, text_short (first 80 characters), author, author_name, author_full ("Name (@handle)"),
//   author_id, followers,
//   verified, platform, source, kind, channel, url, id, language, created_at, level, urgency,
//   reach, complaint, categories, reasons (one per line), rule, tags, sla_deadline,
//   team (the team this delivery is for), role (owner or informed), informed.
// Unknown fields are configuration errors, found when the config loads. A field the ticket does
// not have (no URL, no kind, an unknown count, ...) is missing: a line of the template whose
// fields are all missing is left out ("Link: {{url}}" for a WhatsApp message), a missing count
// reads "unknown", and a missing field between two spaces leaves one.
class Template {
 public:
  enum class Escape { kNone, kHtml, kSlack };

  static absl::StatusOr<Template> Parse(absl::string_view text);
  // With fields of the caller's own besides the ticket's (`extra_fields`), whose values Render
  // takes in `values`; one absent there is missing.
  using Values = std::map<std::string, std::string, std::less<>>;
  static absl::StatusOr<Template> Parse(absl::string_view text, const std::vector<std::string>& extra_fields);
  // Whether the template names `field`.
  bool Uses(absl::string_view field) const;

  // Values are escaped for the target (HTML: & < > " and newlines as <br>; Slack mrkdwn:
  // & < >); the template's own text is kept as written, except that its newlines become <br>
  // in HTML.
  std::string Render(const TicketView& ticket, absl::string_view team, bool owner,
                     Escape escape = Escape::kNone, const Values* values = nullptr) const;
  // As Render, but nullopt when the template has fields and all of them are missing (a custom
  // field with nothing to say is left out rather than sent empty or "unknown").
  std::optional<std::string> RenderIfAny(const TicketView& ticket, absl::string_view team, bool owner,
                                         Escape escape = Escape::kNone) const;

 private:
  struct Part {
    bool field;
    std::string text;  // literal text, or the field name
  };
  // Render, also telling whether the template has fields and whether any was present.
  std::string Render(const TicketView& ticket, absl::string_view team, bool owner, Escape escape,
                     const Values* values, bool* any_field, bool* any_present) const;
  std::vector<Part> parts_;
};

// Appends `value` escaped for the target, as Render escapes field values.
void AppendEscaped(absl::string_view value, Template::Escape escape, std::string* out);

// The helpdesk tag form of a word: lower case, [a-z0-9_-] kept, anything else '_'.
std::string TagOf(absl::string_view word);

}  // namespace triage::router
