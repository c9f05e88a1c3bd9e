// Load generator for triaged's ingest path: keep-alive connections at a fixed concurrency,
// each sending signed generic-source payloads back to back, with per-request latency.
//
//   loadgen --port P [--connections 32] [--seconds 10] [--batch 1] [--secret S]
//   loadgen --serve-null [--port P]   a server that answers 200 at once, for comparison
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/crypto.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"

namespace {

using namespace triage::daemon;  // NOLINT: a benchmark tool
using asio::as_tuple;
using asio::use_awaitable;
using Clock = std::chrono::steady_clock;

// Texts in the shape of what customers write to brands.
constexpr const char* kTexts[] = {
    "@AcmeSupport my order #A-4471 never arrived and nobody answers the phone. Third time asking!",
    "your app has been down for two hours, is there an outage?",
    "I was charged twice for invoice 88-1203. Can you refund one of them?",
    "Love the new update, thanks team!",
    "How much is the enterprise plan? Looking for a demo for 40 seats",
    "The heater you sold me caught fire last night. This is dangerous. I am talking to a lawyer.",
    "Still waiting for a reply about my cancelled subscription, really disappointed",
    "can't log in since this morning, password reset mail never comes",
};

struct Options {
  uint16_t port = 8080;
  int connections = 32;
  int seconds = 10;
  int batch = 1;
  std::string secret = "dev-secret-change-me";
  bool serve_null = false;
};

std::string Payload(int64_t seq, int batch, const std::string& run, absl::BitGen& random) {
  std::string body = batch > 1 ? "[" : "";
  for (int i = 0; i < batch; ++i) {
    if (i > 0) body += ",";
    absl::StrAppend(&body, R"({"id":")", run, "-", seq, "-", i, R"(","platform":"x","text":")",
                    kTexts[absl::Uniform(random, 0u, std::size(kTexts))],
                    R"(","created_at":"2026-11-23T10:00:00Z","author":{"id":")",
                    absl::Uniform(random, 1, 1000000), R"(","handle":"user","followers":)",
                    absl::LogUniform(random, 0, 5'000'000), R"(,"verified":false}})");
  }
  if (batch > 1) body += "]";
  return body;
}

struct Totals {
  std::atomic<int64_t> ok{0}, failed{0};
  std::vector<std::vector<double>> latencies_us;  // one vector per connection
};

asio::awaitable<void> Client(const Options& options, int index, Clock::time_point end, Totals& totals,
                             const std::string& run) {
  auto executor = co_await asio::this_coro::executor;
  beast::tcp_stream stream(executor);
  auto [ec] = co_await stream.async_connect(
      tcp::endpoint(asio::ip::make_address("127.0.0.1"), options.port), as_tuple(use_awaitable));
  if (ec) {
    std::fprintf(stderr, "connect: %s\n", ec.message().c_str());
    co_return;
  }
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  absl::BitGen random;
  std::vector<double>& latencies = totals.latencies_us[index];
  for (int64_t seq = 0; Clock::now() < end; ++seq) {
    Request request{http::verb::post, "/webhooks/generic", 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::content_type, "application/json");
    request.body() = Payload(seq * 1000 + index, options.batch, run, random);
    request.set("X-Triage-Signature",
                "sha256=" + absl::BytesToHexString(HmacSha256(options.secret, request.body())));
    request.keep_alive(true);
    request.prepare_payload();
    const auto start = Clock::now();
    auto [write_ec, w] = co_await http::async_write(stream, request, as_tuple(use_awaitable));
    Response response;
    auto [read_ec, r] = co_await http::async_read(stream, buffer, response, as_tuple(use_awaitable));
    if (write_ec || read_ec) {
      ++totals.failed;
      co_return;
    }
    latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    if (response.result() == http::status::ok) {
      ++totals.ok;
    } else {
      ++totals.failed;
    }
  }
}

int RunLoad(const Options& options) {
  asio::io_context io(1);
  Totals totals;
  totals.latencies_us.resize(options.connections);
  const std::string run = absl::StrCat(absl::ToUnixNanos(absl::Now()));
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(options.seconds);
  for (int i = 0; i < options.connections; ++i) {
    asio::co_spawn(io, Client(options, i, end, totals, run), asio::detached);
  }
  io.run();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (const auto& v : totals.latencies_us) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[static_cast<size_t>(p * (all.size() - 1))]; };
  std::printf(
      "requests_ok=%lld failed=%lld seconds=%.1f connections=%d batch=%d requests_per_s=%.0f "
      "messages_per_s=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
      static_cast<long long>(totals.ok.load()), static_cast<long long>(totals.failed.load()), elapsed,
      options.connections, options.batch, totals.ok / elapsed, totals.ok * options.batch / elapsed,
      pct(0.50), pct(0.99), all.empty() ? 0.0 : all.back());
  return totals.failed.load() == 0 ? 0 : 1;
}

// The same Beast server triaged uses, with a handler that does no work at all.
int ServeNull(const Options& options) {
  asio::io_context io;
  Metrics metrics;
  HttpServer server(io, HttpServerOptions{"null"}, [](Request&, const asio::ip::address&) -> asio::awaitable<Response> {
    co_return JsonResponse(http::status::ok, R"({"accepted":1,"duplicates":0})");
  }, metrics.http_connections);
  const auto port = server.Listen("127.0.0.1", options.port);
  if (!port.ok()) {
    std::fprintf(stderr, "%s\n", std::string(port.status().message()).c_str());
    return 1;
  }
  std::printf("%u\n", *port);
  std::fflush(stdout);
  server.Start();
  std::thread second([&] { io.run(); });
  io.run();
  second.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    bool ok = true;
    if (arg == "--serve-null") {
      options.serve_null = true;
      continue;
    } else if (arg == "--port") {
      int port = 0;
      ok = absl::SimpleAtoi(value, &port);
      options.port = static_cast<uint16_t>(port);
    } else if (arg == "--connections") {
      ok = absl::SimpleAtoi(value, &options.connections);
    } else if (arg == "--seconds") {
      ok = absl::SimpleAtoi(value, &options.seconds);
    } else if (arg == "--batch") {
      ok = absl::SimpleAtoi(value, &options.batch);
    } else if (arg == "--secret") {
      options.secret = value;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "loadgen: bad argument %s\n", arg.c_str());
      return 2;
    }
    ++i;
  }
  return options.serve_null ? ServeNull(options) : RunLoad(options);
}
