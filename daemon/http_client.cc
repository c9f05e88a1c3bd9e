#include "daemon/http_client.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace triage::daemon {

using asio::as_tuple;
using asio::use_awaitable;

absl::StatusOr<Url> ParseUrl(absl::string_view text) {
  Url url;
  if (absl::ConsumePrefix(&text, "https://")) {
    url.tls = true;
  } else if (!absl::ConsumePrefix(&text, "http://")) {
    return absl::InvalidArgumentError("URL must start with http:// or https://");
  }
  const size_t slash = text.find('/');
  absl::string_view authority = text.substr(0, slash);
  url.target = slash == absl::string_view::npos ? "/" : std::string(text.substr(slash));
  if (authority.empty() || absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError("URL needs a host and no user info");
  }
  size_t colon = authority.rfind(':');
  if (authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("bad IPv6 host");
    url.host = std::string(authority.substr(1, close - 1));
    colon = close + 1 < authority.size() && authority[close + 1] == ':' ? close + 1 : absl::string_view::npos;
  } else {
    url.host = std::string(authority.substr(0, colon));
  }
  url.port = colon == absl::string_view::npos ? (url.tls ? "443" : "80")
                                              : std::string(authority.substr(colon + 1));
  if (url.host.empty() || url.port.empty()) return absl::InvalidArgumentError("URL needs a host");
  return url;
}

absl::StatusOr<std::shared_ptr<asio::ssl::context>> MakeClientTlsContext(const std::string& ca_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  boost::system::error_code ec;
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) context->set_default_verify_paths(ec);
  if (!ec && !ca_file.empty()) context->load_verify_file(ca_file, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("TLS setup: ", ec.message()));
  return context;
}

HttpClient::HttpClient(asio::any_io_executor executor, Url url,
                       std::shared_ptr<asio::ssl::context> tls, absl::Duration connect_timeout,
                       absl::Duration timeout)
    : executor_(std::move(executor)),
      url_(std::move(url)),
      tls_(std::move(tls)),
      connect_timeout_(connect_timeout),
      timeout_(timeout) {}

beast::tcp_stream& HttpClient::Lowest() {
  return secure_ ? beast::get_lowest_layer(*secure_) : *plain_;
}

void HttpClient::Close() {
  if (plain_ || secure_) {
    boost::system::error_code ignored;
    Lowest().socket().close(ignored);
  }
  plain_.reset();
  secure_.reset();
  connected_ = false;
  buffer_.clear();
}

asio::awaitable<boost::system::error_code> HttpClient::Connect(std::string* stage) {
  Close();
  tcp::resolver resolver(executor_);
  *stage = "resolve";
  auto [resolve_ec, endpoints] =
      co_await resolver.async_resolve(url_.host, url_.port, as_tuple(use_awaitable));
  if (resolve_ec) co_return resolve_ec;

  if (url_.tls) {
    secure_.emplace(executor_, *tls_);
  } else {
    plain_.emplace(executor_);
  }
  beast::tcp_stream& lowest = Lowest();
  lowest.expires_after(ToChrono(connect_timeout_));
  *stage = "connect";
  auto [connect_ec, endpoint] = co_await lowest.async_connect(endpoints, as_tuple(use_awaitable));
  if (connect_ec) co_return connect_ec;
  lowest.socket().set_option(tcp::no_delay(true));
  if (url_.tls) {
    *stage = "tls";
    // SNI, then the certificate must name the host we asked for.
    if (!SSL_set_tlsext_host_name(secure_->native_handle(), url_.host.c_str())) {
      co_return boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                          asio::error::get_ssl_category());
    }
    secure_->set_verify_callback(asio::ssl::host_name_verification(url_.host));
    auto [tls_ec] = co_await secure_->async_handshake(asio::ssl::stream_base::client,
                                                      as_tuple(use_awaitable));
    if (tls_ec) co_return tls_ec;
  }
  connected_ = true;
  co_return boost::system::error_code{};
}

asio::awaitable<ClientResult> HttpClient::SendOnce(const Request& request) {
  ClientResult result;
  if (!connected_) {
    result.error = co_await Connect(&result.error_stage);
    if (result.error) {
      Close();
      co_return result;
    }
  }
  Lowest().expires_after(ToChrono(timeout_));
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  result.error_stage = "write";
  if (secure_) {
    std::tie(result.error, std::ignore) = co_await http::async_write(*secure_, request, as_tuple(use_awaitable));
    if (!result.error) {
      result.error_stage = "read";
      std::tie(result.error, std::ignore) =
          co_await http::async_read(*secure_, buffer_, parser, as_tuple(use_awaitable));
    }
  } else {
    std::tie(result.error, std::ignore) = co_await http::async_write(*plain_, request, as_tuple(use_awaitable));
    if (!result.error) {
      result.error_stage = "read";
      std::tie(result.error, std::ignore) =
          co_await http::async_read(*plain_, buffer_, parser, as_tuple(use_awaitable));
    }
  }
  if (result.error) {
    Close();
    co_return result;
  }
  result.error_stage.clear();
  result.response = parser.release();
  if (!result.response.keep_alive()) Close();
  co_return result;
}

namespace {

// Whether sending `request` twice is harmless: an idempotent method, or a key the server
// deduplicates by (Zendesk's Idempotency-Key, a Standard Webhooks webhook-id).
bool SafeToRepeat(const Request& request) {
  switch (request.method()) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::options:
      return true;
    default:
      return request.count("Idempotency-Key") > 0 || request.count("webhook-id") > 0;
  }
}

}  // namespace

asio::awaitable<ClientResult> HttpClient::Send(Request request) {
  request.set(http::field::host, url_.host);
  request.version(11);
  request.keep_alive(true);
  request.prepare_payload();
  const bool reused = connected_;
  ClientResult result = co_await SendOnce(request);
  const bool stale = result.error == http::error::end_of_stream ||
                     result.error == asio::error::connection_reset ||
                     result.error == asio::error::broken_pipe || result.error == asio::error::eof;
  // A kept-alive connection the server closed while idle fails like this: sent again at once on
  // a fresh one. But the server may have processed it before the connection went, so only a
  // request that is safe to repeat is; another is retried by its dispatcher, which looks the
  // ticket up first.
  if (reused && stale && SafeToRepeat(request)) result = co_await SendOnce(request);
  co_return result;
}

}  // namespace triage::daemon
