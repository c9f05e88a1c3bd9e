// triagectl: offline tools over a triaged config (check-config, route), and the client of the
// running daemon's admin API (queues, dead-letters, requeue, pause, resume).
#include <simdjson.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "config/config.h"
#include "daemon/triagectl_learn.h"
#include "router/sources/generic/generic_source.h"
#include "router/ticket_json.h"
#include "router/router.h"
#include "router/text.h"

namespace {

constexpr char kUsage[] =
    "usage: triagectl check-config FILE\n"
    "       triagectl route --config FILE [--explain] [INPUT.jsonl]\n"
    "       triagectl train --label complaint|team|level INPUT.jsonl -o MODEL [--seed N]\n"
    "       triagectl evaluate --label L (--folds K | --test FILE | --model FILE) [--config FILE]\n"
    "                 [--json] INPUT.jsonl\n"
    "       triagectl [OPTIONS] queues\n"
    "       triagectl [OPTIONS] dead-letters [--destination D] [--limit N]\n"
    "       triagectl [OPTIONS] show SOURCE/ID\n"
    "       triagectl [OPTIONS] requeue DESTINATION (SEQ | --all)\n"
    "       triagectl [OPTIONS] labels export [--label complaint|team|level] [-o FILE]\n"
    "       triagectl [OPTIONS] quarantine [--limit N]     requests the parser could not read\n"
    "       triagectl [OPTIONS] quarantine show ID\n"
    "       triagectl [OPTIONS] replay (ID | --all)        parse them again and route what reads\n"
    "       triagectl [OPTIONS] pause DESTINATION\n"
    "       triagectl [OPTIONS] resume DESTINATION\n"
    "  OPTIONS: --admin HOST:PORT (default $TRIAGECTL_ADMIN or 127.0.0.1:9464),\n"
    "           --token-file FILE (default $TRIAGECTL_TOKEN_FILE; the admin.token),\n"
    "           --json (the API's JSON instead of a table)\n"
    "  route reads one message per line (stdin by default) in the generic source's JSON shape,\n"
    "  of which only \"text\" is required (author.followers, author.verified, platform, kind,\n"
    "  channel, language help), and writes one JSON line per message: urgency, complaint,\n"
    "  reach, priority, level, sla_deadline, categories, team, informed, rule, tags, dropped;\n"
    "  with --explain also the reasons. It needs no running daemon.\n";

std::string RouteLine(const triage::router::RoutedMessage& r, bool explain) {
  triage::router::JsonWriter w;
  w.BeginObject();
  w.Key("id").String(r.message.id);
  triage::router::WriteTriageFields(r, explain, &w);
  w.EndObject();
  return w.Take();
}

int Route(const std::string& config_path, bool explain, const std::string& input_path) {
  const auto config = triage::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  const auto triager = triage::router::Triager::Create(config->scoring, config->routing);
  if (!triager.ok()) {
    std::fprintf(stderr, "%s\n", std::string(triager.status().message()).c_str());
    return 1;
  }
  std::ifstream file;
  if (!input_path.empty()) {
    file.open(input_path);
    if (!file) {
      std::fprintf(stderr, "triagectl: cannot read %s\n", input_path.c_str());
      return 1;
    }
  }
  std::istream& in = input_path.empty() ? std::cin : file;
  const absl::Time now = absl::Now();
  std::string line;
  int line_number = 0, errors = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto message = triage::router::ParseLooseMessage(line, "triagectl", config->server.payload);
    if (!message.ok()) {
      std::fprintf(stderr, "line %d: %s\n", line_number, std::string(message.status().message()).c_str());
      ++errors;
      continue;
    }
    if (message->id.empty()) message->id = absl::StrCat("line-", line_number);
    std::cout << RouteLine((*triager)->Triage(*std::move(message), now), explain) << '\n';
  }
  return errors == 0 ? 0 : 1;
}

// The admin API client. Exit codes: 0 done, 1 refused by the API, 2 usage, 3 daemon down,
// 4 token missing or wrong.
struct Admin {
  std::string host = "127.0.0.1";
  std::string port = "9464";
  std::string token;
  bool json = false;
};

struct Answer {
  int status = 0;
  std::string body;
};

int Call(const Admin& admin, boost::beast::http::verb method, const std::string& target,
         const std::string& body, Answer* answer) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  boost::asio::ip::tcp::resolver resolver(io);
  const auto endpoints = resolver.resolve(admin.host, admin.port, ec);
  stream.expires_after(std::chrono::seconds(10));
  if (!ec) stream.connect(endpoints, ec);
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, admin.host);
  if (!admin.token.empty()) request.set(http::field::authorization, "Bearer " + admin.token);
  if (!body.empty()) request.set(http::field::content_type, "application/json");
  request.body() = body;
  request.prepare_payload();
  if (!ec) http::write(stream, request, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec) http::read(stream, buffer, response, ec);
  if (ec) {
    std::fprintf(stderr, "triagectl: the daemon does not answer at %s:%s (%s); is it running? (--admin)\n",
                 admin.host.c_str(), admin.port.c_str(), ec.message().c_str());
    return 3;
  }
  answer->status = static_cast<int>(response.result_int());
  answer->body = response.body();
  if (answer->status >= 300) {
    std::string message = answer->body;
    simdjson::dom::parser parser;
    std::string_view error;
    if (parser.parse(answer->body)["error"].get(error) == simdjson::SUCCESS) message = std::string(error);
    std::fprintf(stderr, "triagectl: %s %s: %d %s\n", std::string(http::to_string(method)).c_str(),
                 target.c_str(), answer->status, message.c_str());
    if (answer->status == 401 || answer->status == 403) {
      std::fprintf(stderr, "triagectl: give the admin token with --token-file (admin.token in the config)\n");
      return 4;
    }
    return 1;
  }
  return 0;
}

std::string Text(simdjson::dom::element e, const char* key) {
  std::string_view s;
  if (e[key].get(s) == simdjson::SUCCESS) return std::string(s);
  int64_t n = 0;
  if (e[key].get(n) == simdjson::SUCCESS) return std::to_string(n);
  bool b = false;
  if (e[key].get(b) == simdjson::SUCCESS) return b ? "yes" : "no";
  return "-";
}

void PrintQueues(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  std::printf("queued %s, dead letters %s\n", Text(root, "queued").c_str(), Text(root, "dead_letters").c_str());
  const char* format = "%-16s %-12s %-8s %8s %12s %8s %8s  %s\n";
  std::printf(format, "DESTINATION", "TEAM", "LEVEL", "ENTRIES", "OLDEST (s)", "AT RISK", "OVERDUE", "STATE");
  for (simdjson::dom::element d : root["destinations"].get_array()) {
    std::string state = Text(d, "paused") == "yes" ? "paused by an operator" : "";
    if (Text(d, "paused_until") != "-") state += (state.empty() ? "" : ", ") + ("waiting until " + Text(d, "paused_until"));
    if (Text(d, "breaker") != "closed") state += (state.empty() ? "" : ", ") + ("breaker " + Text(d, "breaker"));
    if (Text(d, "configured") == "no") state = "not configured: its entries wait";
    if (state.empty()) state = "delivering";
    bool any = false;
    for (simdjson::dom::element q : d["queues"].get_array()) {
      std::printf(format, Text(d, "name").c_str(), Text(q, "team").c_str(), Text(q, "level").c_str(),
                  Text(q, "entries").c_str(), Text(q, "oldest_age_seconds").c_str(),
                  Text(q, "sla_at_risk").c_str(), Text(q, "sla_overdue").c_str(), any ? "" : state.c_str());
      any = true;
    }
    if (!any) std::printf(format, Text(d, "name").c_str(), "-", "-", "0", "-", "0", "0", state.c_str());
  }
}

void PrintQuarantine(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  std::printf("%-6s %-24s %-12s %-15s %8s  %s\n", "ID", "RECEIVED", "SOURCE", "REASON", "BYTES", "DETAIL");
  for (simdjson::dom::element q : root["quarantine"].get_array()) {
    std::string detail = Text(q, "detail");
    if (detail.size() > 70) detail = detail.substr(0, 67) + "...";
    std::printf("%-6s %-24s %-12s %-15s %8s  %s\n", Text(q, "id").c_str(), Text(q, "received_at").c_str(),
                Text(q, "source").c_str(), Text(q, "reason").c_str(), Text(q, "bytes").c_str(), detail.c_str());
  }
}

void PrintQuarantined(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element q = parser.parse(body);
  std::printf("quarantined %s: %s, received %s, %s bytes\n  %s: %s\n", Text(q, "id").c_str(),
              Text(q, "source").c_str(), Text(q, "received_at").c_str(), Text(q, "bytes").c_str(),
              Text(q, "reason").c_str(), Text(q, "detail").c_str());
  const std::string text = Text(q, "body");
  std::printf("%s\n", text != "-" ? text.c_str() : ("base64: " + Text(q, "body_base64")).c_str());
}

void PrintReplay(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  for (simdjson::dom::element r : root["replayed"].get_array()) {
    std::string line = absl::StrCat(Text(r, "id"), ": ", Text(r, "outcome"), ", accepted ", Text(r, "accepted"),
                                    ", duplicates ", Text(r, "duplicates"));
    if (const std::string detail = Text(r, "detail"); !detail.empty() && detail != "-") {
      absl::StrAppend(&line, " (", detail, ")");
    }
    std::printf("%s\n", line.c_str());
  }
}

void PrintDeadLetters(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  std::printf("%-8s %-16s %-28s %-12s %-8s %8s  %s\n", "SEQ", "DESTINATION", "SOURCE:ID", "TEAM", "LEVEL",
              "ATTEMPTS", "LAST ERROR");
  for (simdjson::dom::element d : root["dead_letters"].get_array()) {
    std::string error = Text(d, "last_error");
    if (error.size() > 60) error = error.substr(0, 57) + "...";
    std::printf("%-8s %-16s %-28s %-12s %-8s %8s  %s\n", Text(d, "seq").c_str(), Text(d, "destination").c_str(),
                (Text(d, "source") + ":" + Text(d, "id")).c_str(), Text(d, "team").c_str(),
                Text(d, "level").c_str(), Text(d, "attempts").c_str(), error.c_str());
  }
}

void PrintMessage(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(body);
  simdjson::dom::element triage = root["ticket"]["triage"];
  std::printf("%s/%s: %s\n", Text(root, "source").c_str(), Text(root, "id").c_str(), Text(root, "status").c_str());
  std::string informed;
  for (simdjson::dom::element team : triage["informed"].get_array()) {
    informed += (informed.empty() ? "" : ", ") + std::string(std::string_view(team));
  }
  std::printf("  team %s, informed: %s; level %s, urgency %s, reach %s, priority %s; rule %s\n",
              Text(triage, "team").c_str(), informed.empty() ? "none" : informed.c_str(),
              Text(triage, "level").c_str(), Text(triage, "urgency").c_str(), Text(triage, "reach").c_str(),
              Text(triage, "priority").c_str(), Text(triage, "rule").c_str());
  for (simdjson::dom::element reason : triage["reasons"].get_array()) {
    std::printf("  why: %s\n", std::string(std::string_view(reason)).c_str());
  }
  std::printf("%-16s %-12s %-9s %-19s %8s %8s  %s\n", "DESTINATION", "TEAM", "ROLE", "STATE", "POSITION",
              "ATTEMPTS", "DETAIL");
  for (simdjson::dom::element d : root["deliveries"].get_array()) {
    // Delivered: when, and the helpdesk's ticket; otherwise the last error.
    std::string detail = Text(d, "last_error");
    if (Text(d, "state") == "delivered") {
      detail = "at " + Text(d, "delivered_at");
      if (const std::string ticket = Text(d, "remote_ticket"); ticket != "-") {
        detail += ", ticket " + ticket;
      }
    }
    const bool reply = Text(d, "role") == "reply";  // a reply_note is the helpdesk's note about it
    if (reply && Text(d, "state") == "delivered" && Text(d, "text") != "-") {
      const std::string id = Text(d, "remote_ticket");
      detail = "at " + Text(d, "delivered_at") + (id != "-" ? ", message " + id : "");
    }
    std::printf("%-16s %-12s %-9s %-19s %8s %8s  %s\n", Text(d, "destination").c_str(), Text(d, "team").c_str(),
                Text(d, "role").c_str(), Text(d, "state").c_str(), Text(d, "position").c_str(),
                Text(d, "attempts").c_str(), detail.c_str());
    // An acknowledgement: what the customer was told, or why nothing was sent.
    if (reply && Text(d, "state") == "delivered" && Text(d, "text") != "-") {
      std::printf(Text(d, "remote_ticket") != "-" ? "  told the customer: %s\n" : "  %s\n", Text(d, "text").c_str());
    }
  }
  for (simdjson::dom::element r : root["remote_tickets"].get_array()) {
    std::printf("ticket %s at %s (team %s)\n", Text(r, "ticket").c_str(), Text(r, "destination").c_str(),
                Text(r, "team").c_str());
  }
  simdjson::dom::element label;
  if (root["label"].get(label) == simdjson::SUCCESS && label.is_object()) {
    std::printf("label from %s (ticket %s, %s): complaint %s, team %s, level %s\n", Text(label, "feedback").c_str(),
                Text(label, "ticket").c_str(), Text(label, "labelled_at").c_str(), Text(label, "complaint").c_str(),
                Text(label, "team").c_str(), Text(label, "level").c_str());
  }
}

// Writes every label record as one JSON line (the shape `train` reads), page by page.
// `--label L` keeps the lines that carry that label; `-o FILE` writes to a file (atomically).
int ExportLabels(const Admin& admin, const std::vector<std::string>& args) {
  std::string label, output;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--label" && i + 1 < args.size()) {
      label = args[++i];
    } else if (args[i] == "-o" && i + 1 < args.size()) {
      output = args[++i];
    } else {
      return -1;
    }
  }
  if (!label.empty() && label != "complaint" && label != "team" && label != "level") return -1;
  std::string lines, after;
  int64_t exported = 0, total = 0;
  for (;;) {
    Answer answer;
    const std::string target = absl::StrCat("/v1/labels?limit=5000", after.empty() ? "" : "&after=", after);
    if (const int rc = Call(admin, boost::beast::http::verb::get, target, "", &answer); rc != 0) return rc;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (parser.parse(answer.body).get(root) != simdjson::SUCCESS) {
      std::fprintf(stderr, "triagectl: the daemon's answer is not JSON\n");
      return 1;
    }
    for (simdjson::dom::element record : root["labels"].get_array()) {
      ++total;
      if (!label.empty() && record[label].error() == simdjson::NO_SUCH_FIELD) continue;
      absl::StrAppend(&lines, simdjson::minify(record), "\n");
      ++exported;
    }
    std::string_view next;
    if (root["next"].get(next) != simdjson::SUCCESS) break;
    after = std::string(next);
  }
  if (output.empty()) {
    std::fwrite(lines.data(), 1, lines.size(), stdout);
  } else {
    const std::string temporary = output + ".tmp";
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << lines;
    out.close();
    if (!out || std::rename(temporary.c_str(), output.c_str()) != 0) {
      std::fprintf(stderr, "triagectl: cannot write %s\n", output.c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "exported %lld of %lld labelled messages%s%s\n", static_cast<long long>(exported),
               static_cast<long long>(total), label.empty() ? "" : " with a label for ", label.c_str());
  return 0;
}

int AdminCommand(int argc, char** argv) {
  namespace http = boost::beast::http;
  Admin admin;
  std::string address = std::getenv("TRIAGECTL_ADMIN") != nullptr ? std::getenv("TRIAGECTL_ADMIN") : "";
  std::string token_file = std::getenv("TRIAGECTL_TOKEN_FILE") != nullptr ? std::getenv("TRIAGECTL_TOKEN_FILE") : "";
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--admin" && i + 1 < argc) {
      address = argv[++i];
    } else if (arg == "--token-file" && i + 1 < argc) {
      token_file = argv[++i];
    } else if (arg == "--json") {
      admin.json = true;
    } else {
      args.push_back(arg);
    }
  }
  if (!address.empty()) {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "triagectl: --admin must be HOST:PORT\n");
      return 2;
    }
    admin.host = address.substr(0, colon);
    admin.port = address.substr(colon + 1);
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) {
      std::fprintf(stderr, "triagectl: cannot read the token file %s\n", token_file.c_str());
      return 4;
    }
    std::getline(in, admin.token);
    admin.token = std::string(absl::StripAsciiWhitespace(admin.token));
  }
  if (args.empty()) return -1;
  const std::string& command = args[0];
  Answer answer;
  int rc = -1;
  if (command == "queues" && args.size() == 1) {
    rc = Call(admin, http::verb::get, "/v1/queues", "", &answer);
    if (rc == 0 && !admin.json) PrintQueues(answer.body);
  } else if (command == "dead-letters") {
    std::string query;
    for (size_t i = 1; i + 1 < args.size(); i += 2) {
      if (args[i] != "--destination" && args[i] != "--limit") return -1;
      absl::StrAppend(&query, query.empty() ? "?" : "&", args[i].substr(2), "=", args[i + 1]);
    }
    if (args.size() % 2 == 0) return -1;
    rc = Call(admin, http::verb::get, "/v1/dead-letters" + query, "", &answer);
    if (rc == 0 && !admin.json) PrintDeadLetters(answer.body);
  } else if (command == "show" && args.size() == 2 && args[1].find('/') != std::string::npos) {
    // Ids may hold spaces, '/', '%' or '?': each part goes percent-encoded.
    const size_t slash = args[1].find('/');
    rc = Call(admin, http::verb::get,
              absl::StrCat("/v1/messages/", triage::router::PercentEncode(args[1].substr(0, slash)), "/",
                           triage::router::PercentEncode(args[1].substr(slash + 1))),
              "", &answer);
    if (rc == 0 && !admin.json) PrintMessage(answer.body);
  } else if (command == "requeue" && args.size() == 3) {
    uint64_t seq = 0;
    std::string body;
    if (args[2] == "--all") {
      body = absl::StrCat(R"({"destination":")", args[1], R"(","all":true})");
    } else if (absl::SimpleAtoi(args[2], &seq)) {
      body = absl::StrCat(R"({"destination":")", args[1], R"(","seq":)", seq, "}");
    } else {
      return -1;
    }
    rc = Call(admin, http::verb::post, "/v1/dead-letters/requeue", body, &answer);
    if (rc == 0 && !admin.json) {
      simdjson::dom::parser parser;
      std::printf("requeued %s\n", Text(parser.parse(answer.body), "requeued").c_str());
    }
  } else if (command == "quarantine" && args.size() == 3 && args[1] == "show") {
    rc = Call(admin, http::verb::get, "/v1/quarantine/" + triage::router::PercentEncode(args[2]), "", &answer);
    if (rc == 0 && !admin.json) PrintQuarantined(answer.body);
  } else if (command == "quarantine" && (args.size() == 1 || (args.size() == 3 && args[1] == "--limit"))) {
    rc = Call(admin, http::verb::get, args.size() == 3 ? "/v1/quarantine?limit=" + triage::router::PercentEncode(args[2]) : "/v1/quarantine",
              "", &answer);
    if (rc == 0 && !admin.json) PrintQuarantine(answer.body);
  } else if (command == "replay" && args.size() == 2) {
    uint64_t id = 0;
    std::string body;
    if (args[1] == "--all") {
      body = R"({"all":true})";
    } else if (absl::SimpleAtoi(args[1], &id)) {
      body = absl::StrCat(R"({"id":)", id, "}");
    } else {
      return -1;
    }
    rc = Call(admin, http::verb::post, "/v1/quarantine/replay", body, &answer);
    if (rc == 0 && !admin.json) PrintReplay(answer.body);
  } else if (command == "labels" && args.size() >= 2 && args[1] == "export") {
    return ExportLabels(admin, std::vector<std::string>(args.begin() + 2, args.end()));
  } else if ((command == "pause" || command == "resume") && args.size() == 2) {
    rc = Call(admin, http::verb::post, absl::StrCat("/v1/destinations/", args[1], "/", command), "", &answer);
    if (rc == 0 && !admin.json) std::printf("%s: %s\n", args[1].c_str(), command == "pause" ? "paused" : "resumed");
  } else {
    return -1;
  }
  if (rc == 0 && admin.json) std::printf("%s\n", answer.body.c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "check-config" && argc == 3) {
    const auto config = triage::config::LoadConfigFile(argv[2]);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    std::printf("%s: ok\n", argv[2]);
    return 0;
  }
  if (command == "train") return triage::ctl::TrainCommand(argc - 2, argv + 2);
  if (command == "evaluate") return triage::ctl::EvaluateCommand(argc - 2, argv + 2);
  if (command == "route") {
    std::string config_path, input;
    bool explain = false;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
        config_path = argv[++i];
      } else if (std::strcmp(argv[i], "--explain") == 0) {
        explain = true;
      } else if (input.empty() && argv[i][0] != '-') {
        input = argv[i];
      } else {
        std::fputs(kUsage, stderr);
        return 2;
      }
    }
    if (!config_path.empty()) return Route(config_path, explain, input);
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (const int rc = AdminCommand(argc, argv); rc >= 0) return rc;
  std::fputs(kUsage, stderr);
  return 2;
}
