#include "daemon/ingest.h"

#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "daemon/async.h"
#include "daemon/crypto.h"
#include "router/generic_source.h"
#include "router/ticket_json.h"

namespace triage::daemon {

Pipeline::Pipeline(const config::Config& config)
    : sources(config.sources),
      limits(config.server.payload),
      triager(config.scoring, config.routing) {
  for (const config::TeamOptions& team : config.teams) {
    team_destinations[team.name] = team.destinations;
  }
}

http::status IngressStatus(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return http::status::ok;
    case absl::StatusCode::kInvalidArgument: return http::status::bad_request;
    case absl::StatusCode::kUnauthenticated: return http::status::unauthorized;
    case absl::StatusCode::kNotFound: return http::status::not_found;
    case absl::StatusCode::kFailedPrecondition: return http::status::method_not_allowed;
    case absl::StatusCode::kResourceExhausted:  // queue full or writer saturated: retry later
    case absl::StatusCode::kUnavailable: return http::status::service_unavailable;
    default: return http::status::internal_server_error;
  }
}

Ingest::Ingest(std::shared_ptr<const Pipeline> pipeline, storage::Store& store, Metrics& metrics)
    : pipeline_(std::move(pipeline)), store_(store), metrics_(metrics) {}

Response Ingest::Answer(absl::string_view source, const absl::Status& status) {
  const http::status code = IngressStatus(status);
  metrics_.ingest_requests
      .Add({{"source", std::string(source)}, {"status", std::to_string(static_cast<int>(code))}})
      .Increment();
  Response response = JsonError(code, status.message());
  if (code == http::status::service_unavailable) response.set(http::field::retry_after, "5");
  return response;
}

asio::awaitable<Response> Ingest::Handle(Request& request) {
  const std::shared_ptr<const Pipeline> pipeline = pipeline_.load();
  absl::string_view path = ToAbsl(request.target());
  path = path.substr(0, path.find('?'));
  if (!absl::ConsumePrefix(&path, "/webhooks/")) {
    co_return JsonError(http::status::not_found, "no such path; webhooks are under /webhooks/<source>");
  }
  for (const config::SourceOptions& source : pipeline->sources) {
    if (source.name == path) co_return co_await HandleSource(*pipeline, source, request);
  }
  // Unknown source names are not used as metric labels: they come from outside.
  co_return Answer("unknown", absl::NotFoundError(absl::StrCat("unknown source '", path, "'")));
}

asio::awaitable<Response> Ingest::HandleSource(const Pipeline& pipeline,
                                               const config::SourceOptions& source,
                                               Request& request) {
  const absl::Time received_at = absl::Now();
  if (request.method() != http::verb::post) {
    Response response = Answer(source.name, absl::FailedPreconditionError("use POST"));
    response.set(http::field::allow, "POST");
    co_return response;
  }
  metrics_.ingest_bytes.Add({{"source", source.name}}).Increment(static_cast<double>(request.body().size()));

  const auto signature = request.find(source.signature_header);
  if (signature == request.end() ||
      !VerifyHexHmacSha256(source.secret, request.body(), ToAbsl(signature->value()))) {
    co_return Answer(source.name, absl::UnauthenticatedError(absl::StrCat(
                                      "missing or wrong signature in ", source.signature_header)));
  }

  absl::StatusOr<std::vector<router::Message>> messages =
      router::ParseGenericPayload(request.body(), source.name, pipeline.limits);
  if (!messages.ok()) co_return Answer(source.name, messages.status());

  std::vector<storage::NewMessage> batch;
  batch.reserve(messages->size());
  struct Routed {
    std::string team, level, rule;
  };
  std::vector<Routed> routed;
  routed.reserve(messages->size());
  for (router::Message& message : *messages) {
    std::string key = storage::MessageKey(message.source, message.id);
    const router::RoutedMessage r = pipeline.triager.Triage(std::move(message), received_at);
    storage::NewMessage& out = batch.emplace_back();
    out.key = std::move(key);
    out.ticket_json = router::TicketJson(r);
    out.level = r.triage.level;
    auto add_team = [&](const std::string& team, bool owner) {
      const auto found = pipeline.team_destinations.find(team);
      if (found == pipeline.team_destinations.end()) return;
      for (const std::string& destination : found->second) {
        out.deliveries.push_back({destination, team, owner});
      }
    };
    add_team(r.triage.team, true);
    for (const std::string& team : r.triage.informed) add_team(team, false);
    routed.push_back({r.triage.team, std::string(router::LevelName(r.triage.level)), r.triage.rule});
  }

  const storage::IngestResult result =
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(storage::IngestResult)>(
          [&](auto handler) {
            store_.Submit(std::move(batch), received_at, ResumeOnOwnExecutor(std::move(handler)));
          },
          asio::use_awaitable);
  if (!result.status.ok()) {
    spdlog::error("event=ingest_store_failed source={} error=\"{}\"", source.name,
                  std::string(result.status.message()));
    co_return Answer(source.name, result.status);
  }
  for (size_t i = 0; i < routed.size(); ++i) {
    if (result.duplicate[i]) continue;
    metrics_.routed.Add({{"team", routed[i].team}, {"level", routed[i].level}, {"rule", routed[i].rule}})
        .Increment();
  }
  metrics_.ingest_messages.Add({{"source", source.name}, {"outcome", "stored"}}).Increment(result.stored);
  metrics_.ingest_messages.Add({{"source", source.name}, {"outcome", "duplicate"}})
      .Increment(result.duplicates);
  metrics_.ingest_requests.Add({{"source", source.name}, {"status", "200"}}).Increment();
  metrics_.ingest_latency.Add({{"source", source.name}}, Buckets())
      .Observe(absl::ToDoubleSeconds(absl::Now() - received_at));
  co_return JsonResponse(http::status::ok, absl::StrCat("{\"accepted\":", result.stored,
                                                        ",\"duplicates\":", result.duplicates, "}"));
}

}  // namespace triage::daemon
