#include "daemon/http_server.h"

#include <sys/socket.h>

#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "daemon/async.h"
#include "router/json_writer.h"

namespace triage::daemon {

using asio::as_tuple;
using asio::use_awaitable;

namespace {

// A deadline on a connection's reads and writes that cancels them but leaves the socket open,
// so a 408 can still be written (beast::tcp_stream's own timeout closes the socket). Armed and
// disarmed around every request without touching its timer, which costs a lock, a heap update
// and a cancelled handler's dispatch each time: one wait stays pending, at most `step` ahead,
// and when it ends before the deadline it waits again for the rest. A connection's timer thus
// wakes it once per `step` at most, whatever its traffic. Lives on the connection's strand.
class Deadline {
 public:
  using Clock = asio::steady_timer::clock_type;

  Deadline(tcp::socket& socket, absl::Duration step)
      : state_(std::make_shared<State>(socket)), step_(ToChrono(step)) {}
  ~Deadline() {
    state_->socket = nullptr;  // a handler already queued finds the connection gone
    state_->timer.cancel();
  }

  void Arm(absl::Duration after) {
    state_->fired = false;
    state_->deadline = Clock::now() + ToChrono(after);
    // Rarely earlier than the pending wait (an `after` shorter than `step`): moved then.
    if (!state_->waiting || state_->deadline < state_->timer.expiry()) Wait(state_, step_);
  }
  void Disarm() { state_->deadline = Clock::time_point::max(); }
  bool fired() const { return state_->fired; }

 private:
  struct State {
    explicit State(tcp::socket& s) : socket(&s), timer(s.get_executor()) {}
    tcp::socket* socket;
    asio::steady_timer timer;
    Clock::time_point deadline = Clock::time_point::max();
    bool waiting = false;
    bool fired = false;
  };

  static void Wait(const std::shared_ptr<State>& state, Clock::duration step) {
    state->waiting = true;
    state->timer.expires_at(std::min(state->deadline, Clock::now() + step));
    state->timer.async_wait([state, step](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;  // moved (a new wait is pending) or gone
      state->waiting = false;
      if (state->socket == nullptr || state->deadline == Clock::time_point::max()) return;  // disarmed
      if (Clock::now() < state->deadline) {
        Wait(state, step);
        return;
      }
      state->fired = true;
      boost::system::error_code ignored;
      state->socket->cancel(ignored);
    });
  }

  std::shared_ptr<State> state_;
  const Clock::duration step_;
};

}  // namespace

Response JsonResponse(http::status status, std::string body) {
  Response response{status, 11};
  response.set(http::field::content_type, "application/json");
  response.body() = std::move(body);
  return response;
}

std::optional<std::string> PercentDecode(absl::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (in[i] == '%') {
      int value = 0;
      if (i + 2 >= in.size() || !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 1])) ||
          !absl::ascii_isxdigit(static_cast<unsigned char>(in[i + 2])) ||
          !absl::SimpleHexAtoi(in.substr(i + 1, 2), &value)) {
        return std::nullopt;
      }
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::optional<std::string> QueryParam(absl::string_view target, absl::string_view name) {
  const size_t question = target.find('?');
  if (question == absl::string_view::npos) return std::nullopt;
  for (absl::string_view pair : absl::StrSplit(target.substr(question + 1), '&')) {
    const size_t equals = pair.find('=');
    const std::optional<std::string> key = PercentDecode(pair.substr(0, equals), true);
    if (key && *key == name) {
      return PercentDecode(equals == absl::string_view::npos ? "" : pair.substr(equals + 1), true);
    }
  }
  return std::nullopt;
}

Response JsonError(http::status status, absl::string_view message) {
  std::string body = "{\"error\":";
  router::AppendJsonString(message, &body);
  body.push_back('}');
  return JsonResponse(status, std::move(body));
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler,
                       prometheus::Family<prometheus::Counter>& connections)
    : io_(io),
      options_(std::move(options)),
      handler_(std::move(handler)),
      connections_(connections),
      acceptor_(asio::make_strand(io)) {}

void HttpServer::Count(const char* outcome) {
  connections_.Add({{"listener", options_.name}, {"outcome", outcome}}).Increment();
}

absl::StatusOr<uint16_t> HttpServer::Listen(const std::string& address, uint16_t port) {
  boost::system::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("bad listen address ", address));
  const tcp::endpoint endpoint(ip, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ":", port, ": ", ec.message()));
  }
  return acceptor_.local_endpoint().port();
}

absl::StatusOr<uint16_t> HttpServer::Adopt(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("socket ", fd, ": ", std::strerror(errno)));
  }
  boost::system::error_code ec;
  acceptor_.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("socket ", fd, ": ", ec.message()));
  const uint16_t port = acceptor_.local_endpoint(ec).port();
  if (ec) return absl::InvalidArgumentError(absl::StrCat("socket ", fd, ": ", ec.message()));
  return port;
}

std::string HttpServer::LocalAddress() const {
  boost::system::error_code ec;
  const tcp::endpoint endpoint = acceptor_.local_endpoint(ec);
  if (ec) return "?";
  const asio::ip::address ip = endpoint.address();
  return ip.is_v6() ? absl::StrCat("[", ip.to_string(), "]:", endpoint.port())
                    : absl::StrCat(ip.to_string(), ":", endpoint.port());
}

void HttpServer::Start() {
  asio::co_spawn(acceptor_.get_executor(), AcceptLoop(), asio::detached);
}

void HttpServer::SetTls(std::shared_ptr<asio::ssl::context> tls) {
  std::lock_guard lock(tls_mu_);
  tls_ = std::move(tls);
}

void HttpServer::StopAccepting() {
  stopping_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  std::lock_guard lock(registry_->mu);
  for (const std::shared_ptr<Session>& session : registry_->sessions) {
    if (!session->idle) continue;
    // Runs on the session's strand, where the stream lives; the session may have ended since,
    // which the registry tells.
    asio::post(session->stream->get_executor(), [registry = registry_,
                                                  weak = std::weak_ptr<Session>(session)] {
      std::lock_guard inner(registry->mu);
      if (auto s = weak.lock(); s && s->stream != nullptr && s->idle) s->stream->cancel();
    });
  }
}

asio::awaitable<void> HttpServer::AcceptLoop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), as_tuple(use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping_) co_return;
      spdlog::warn("event=accept_failed listener={} error=\"{}\"", options_.name, ec.message());
      continue;
    }
    if (active_.load() >= options_.max_connections) {
      Count("rejected_limit");
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    Count("accepted");
    ++active_;
    std::shared_ptr<asio::ssl::context> tls;
    {
      std::lock_guard lock(tls_mu_);
      tls = tls_;
    }
    auto executor = socket.get_executor();
    asio::co_spawn(executor, Serve(std::move(socket), std::move(tls)), [this](std::exception_ptr e) {
      --active_;
      if (e) {
        spdlog::error("event=connection_failed listener={} error=\"{}\"", options_.name, ExceptionMessage(e));
      }
    });
  }
}

namespace {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;
template <typename Stream>
constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

}  // namespace

template <typename Stream>
asio::awaitable<void> HttpServer::Reject(Stream& stream, beast::flat_buffer& buffer,
                                         http::status status, absl::string_view message,
                                         const char* outcome) {
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  Count(outcome);
  Response response = JsonError(status, message);
  response.keep_alive(false);
  response.prepare_payload();
  tcp.expires_after(ToChrono(options_.read_timeout));
  co_await http::async_write(stream, response, as_tuple(use_awaitable));
  // Half-close (plain HTTP), then drain briefly so the client reads the answer instead of a
  // reset caused by the body it is still sending.
  boost::system::error_code ignored;
  if constexpr (!kTls<Stream>) tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
  tcp.expires_after(std::chrono::seconds(1));
  for (size_t drained = 0; drained < (4u << 20);) {
    buffer.clear();
    auto [ec, n] = co_await stream.async_read_some(buffer.prepare(64 * 1024), as_tuple(use_awaitable));
    if (ec) break;
    drained += n;
  }
}

asio::awaitable<void> HttpServer::Serve(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls) {
  boost::system::error_code ec;
  const asio::ip::address peer = socket.remote_endpoint(ec).address();
  if (tls == nullptr) {
    beast::tcp_stream stream(std::move(socket));
    co_await ServeOn(stream, peer);
  } else {
    TlsStream stream(beast::tcp_stream(std::move(socket)), *tls);
    co_await ServeOn(stream, peer);
  }
}

template <typename Stream>
asio::awaitable<void> HttpServer::ServeOn(Stream& stream, const asio::ip::address& peer) {
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  auto session = std::make_shared<Session>();
  session->stream = &tcp;
  std::list<std::shared_ptr<Session>>::iterator registered;
  {
    std::lock_guard lock(registry_->mu);
    registered = registry_->sessions.insert(registry_->sessions.end(), session);
  }
  struct Unregister {
    std::shared_ptr<Registry> registry;
    std::list<std::shared_ptr<Session>>::iterator it;
    ~Unregister() {
      std::lock_guard lock(registry->mu);
      (*it)->stream = nullptr;
      registry->sessions.erase(it);
    }
  } unregister{registry_, registered};

  beast::flat_buffer buffer;
  Deadline deadline(tcp.socket(), std::min(options_.read_timeout, options_.idle_timeout));
  if constexpr (kTls<Stream>) {
    deadline.Arm(options_.read_timeout);
    auto [ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, as_tuple(use_awaitable));
    deadline.Disarm();
    if (ec) {
      Count("tls_failed");
      co_return;
    }
  }
  while (!stopping_) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));

    // Idle until the first byte of the next request (idle_timeout); from that byte, the whole
    // request, headers and body, must arrive within read_timeout, or it is answered 408.
    boost::system::error_code ec;
    if (buffer.size() == 0) {
      session->idle = true;
      deadline.Arm(options_.idle_timeout);
      if constexpr (kTls<Stream>) {
        // Records already read may hold the next request: read it, not the socket's readiness.
        size_t n = 0;
        std::tie(ec, n) = co_await stream.async_read_some(buffer.prepare(4096), as_tuple(use_awaitable));
        buffer.commit(n);
      } else {
        std::tie(ec) = co_await tcp.socket().async_wait(tcp::socket::wait_read, as_tuple(use_awaitable));
      }
      deadline.Disarm();
      session->idle = false;
      if (ec || stopping_) {
        if (deadline.fired()) Count("idle_closed");
        break;
      }
    }
    deadline.Arm(options_.read_timeout);
    size_t n = 0;
    std::tie(ec, n) = co_await http::async_read_header(stream, buffer, parser, as_tuple(use_awaitable));
    if (!ec && !parser.is_done()) {
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        tcp.expires_after(ToChrono(options_.read_timeout));
        http::response<http::empty_body> proceed{http::status::continue_, 11};
        std::tie(ec, n) = co_await http::async_write(stream, proceed, as_tuple(use_awaitable));
        tcp.expires_never();
      }
      if (!ec) std::tie(ec, n) = co_await http::async_read(stream, buffer, parser, as_tuple(use_awaitable));
    }
    deadline.Disarm();
    if (ec) {
      if (ec == http::error::body_limit) {
        co_await Reject(stream, buffer, http::status::payload_too_large,
                        absl::StrCat("body larger than ", options_.max_body_bytes, " bytes"),
                        "body_too_large");
      } else if (ec == http::error::header_limit) {
        co_await Reject(stream, buffer, http::status::request_header_fields_too_large,
                        absl::StrCat("headers larger than ", options_.max_header_bytes, " bytes"),
                        "header_too_large");
      } else if (deadline.fired()) {
        co_await Reject(stream, buffer, http::status::request_timeout,
                        absl::StrCat("request not received within ",
                                     absl::FormatDuration(options_.read_timeout)),
                        "timeout");
      } else if (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                 ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await Reject(stream, buffer, http::status::bad_request, "malformed HTTP request",
                        "bad_request");
      }
      break;  // end of stream, reset, cancelled at shutdown: nothing to answer
    }

    Request request = parser.release();
    Response response = co_await handler_(request, peer);
    response.version(request.version());
    response.keep_alive(request.keep_alive() && !stopping_);
    response.prepare_payload();
    deadline.Arm(options_.read_timeout);  // the answer's write too
    auto [write_ec, written] = co_await http::async_write(stream, response, as_tuple(use_awaitable));
    deadline.Disarm();
    if (write_ec || !response.keep_alive()) break;
  }
  if constexpr (kTls<Stream>) {
    // close_notify, waiting a second at most for the client's.
    tcp.expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(as_tuple(use_awaitable));
  }
  boost::system::error_code ignored;
  tcp.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace triage::daemon
