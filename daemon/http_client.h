#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>

#include "absl/status/statusor.h"
#include "daemon/http.h"

namespace triage::daemon {

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string target;  // path and query, "/" at least
};
absl::StatusOr<Url> ParseUrl(absl::string_view url);

// A TLS client context that verifies peers against the system CAs, plus `ca_file` when set.
absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeClientTlsContext(const std::string& ca_file);

struct ClientResult {
  boost::system::error_code error;  // transport failure (connect, TLS, timeout, reset)
  std::string error_stage;          // "resolve", "connect", "tls", "write", "read"
  Response response;                // valid when !error
};

// One persistent HTTP/1.1 connection to one origin, reopened when the server closes it.
// Requests are sent one at a time (a delivery worker owns one client: the pool of a
// destination is its set of workers). Not thread-safe: use from one strand.
class HttpClient {
 public:
  HttpClient(asio::any_io_executor executor, Url url, std::shared_ptr<asio::ssl::context> tls,
             absl::Duration connect_timeout, absl::Duration timeout);

  // Sends `request` (Host is set here). A request that fails on a reused keep-alive
  // connection before any answer is sent once more on a fresh one (the server may have closed
  // it while idle), when repeating it is harmless: an idempotent method, or an Idempotency-Key
  // or webhook-id the server deduplicates by. Others (a Freshdesk creation) fail, and their
  // dispatcher's retry looks the ticket up first.
  asio::awaitable<ClientResult> Send(Request request);
  void Close();

 private:
  asio::awaitable<ClientResult> SendOnce(const Request& request);
  asio::awaitable<boost::system::error_code> Connect(std::string* stage);
  beast::tcp_stream& Lowest();

  asio::any_io_executor executor_;
  const Url url_;
  std::shared_ptr<asio::ssl::context> tls_;
  const absl::Duration connect_timeout_;
  const absl::Duration timeout_;
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure_;
  bool connected_ = false;
  beast::flat_buffer buffer_;
};

}  // namespace triage::daemon
