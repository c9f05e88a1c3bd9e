#include "router/ticket_json.h"

#include "router/json_writer.h"

namespace triage::router {

void WriteTriageFields(const RoutedMessage& routed, bool with_reasons, JsonWriter* writer) {
  const Message& m = routed.message;
  const Triage& t = routed.triage;
  JsonWriter& w = *writer;
  w.Key("urgency").Int(t.urgency);
  w.Key("complaint").Bool(t.complaint);
  w.Key("reach");
  if (t.reach_known || m.author.verified || m.author.assumed_reach) {
    w.Int(t.reach);
  } else {
    w.Null();
  }
  w.Key("reach_known").Bool(t.reach_known);
  w.Key("priority").Int(t.priority);
  w.Key("level").String(LevelName(t.level));
  w.Key("sla_deadline").Time(t.sla_deadline);
  w.Key("categories").BeginArray();
  for (const CategoryMatch& c : t.categories) {
    w.BeginObject().Key("name").String(c.name).Key("weight").Int(c.weight).Key("terms").BeginArray();
    for (const std::string& term : c.terms) w.String(term);
    w.EndArray().EndObject();
  }
  w.EndArray();
  w.Key("team").String(t.team);
  w.Key("informed").BeginArray();
  for (const std::string& team : t.informed) w.String(team);
  w.EndArray();
  w.Key("rule").String(t.rule);
  w.Key("tags").BeginArray();
  for (const std::string& tag : t.tags) w.String(tag);
  w.EndArray();
  w.Key("dropped").Bool(t.dropped);
  if (t.model_complaint_probability) w.Key("complaint_probability").Double(*t.model_complaint_probability);
  if (!t.model_team.empty()) {
    w.Key("model_team").BeginObject().Key("team").String(t.model_team);
    w.Key("probability").Double(t.model_team_confidence).EndObject();
  }
  if (with_reasons) {
    w.Key("reasons").BeginArray();
    for (const std::string& reason : t.reasons) w.String(reason);
    w.EndArray();
  }
}

std::string TicketJson(const RoutedMessage& routed) {
  const Message& m = routed.message;
  JsonWriter w(512 + m.text.size() * 2);
  w.BeginObject();
  w.Key("source").String(m.source);
  w.Key("id").String(m.id);
  w.Key("platform").String(m.platform);
  w.Key("kind").String(m.kind);
  w.Key("channel").String(m.channel);
  w.Key("account_id").String(m.account_id);
  w.Key("author").BeginObject();
  w.Key("id").String(m.author.id);
  w.Key("handle").String(m.author.handle);
  w.Key("name").String(m.author.name);
  w.Key("followers");
  if (m.author.followers) {
    w.Int(*m.author.followers);
  } else {
    w.Null();
  }
  w.Key("verified").Bool(m.author.verified);
  w.Key("verified_type").String(m.author.verified_type);
  w.EndObject();
  w.Key("text").String(m.text);
  w.Key("language").String(m.language);
  w.Key("created_at").Time(m.created_at);
  w.Key("received_at").Time(routed.received_at);
  w.Key("conversation_id").String(m.conversation_id);
  w.Key("url").String(m.url);

  w.Key("triage").BeginObject();
  WriteTriageFields(routed, true, &w);
  w.EndObject();

  w.EndObject();
  return w.Take();
}

}  // namespace triage::router
