#pragma once

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include <boost/asio/ssl.hpp>

#include "absl/status/statusor.h"
#include "daemon/http.h"

namespace triage::daemon {

struct HttpServerOptions {
  std::string name;  // "ingest" or "admin": the listener label of the metrics
  size_t max_body_bytes = 1 << 20;    // beyond: 413
  size_t max_header_bytes = 16 << 10;  // beyond: 431
  absl::Duration read_timeout = absl::Seconds(10);  // from a request's first byte to its end; then 408
  absl::Duration idle_timeout = absl::Seconds(60);  // keep-alive wait for the next request
  int max_connections = 1024;  // further connections are closed at once and counted
};

// An asynchronous HTTP/1.1 server on Boost.Beast: keep-alive, Expect: 100-continue, limits on
// header and body size, read and idle timeouts, a connection limit. Each connection runs as a
// coroutine on its own strand; the handler is a coroutine too, so it can wait (on storage, say)
// without holding a thread. Protocol errors are answered here (400, 408, 413, 431) and counted
// in `connections` under the listener's name.
//
// With a TLS context (SetTls), every connection is HTTPS: the handshake must end within
// read_timeout (else the connection is closed and counted "tls_failed"), and a context swapped
// in later (a renewed certificate) serves the connections accepted after it.
//
// Thread-safety: Listen or Adopt, and Start, before io_context::run; StopAccepting and SetTls
// from any thread.
class HttpServer {
 public:
  // The handler gets the request and the address of the TCP peer.
  using Handler = std::function<asio::awaitable<Response>(Request&, const asio::ip::address&)>;

  HttpServer(asio::io_context& io, HttpServerOptions options, Handler handler,
             prometheus::Family<prometheus::Counter>& connections);

  // Binds and listens; returns the bound port (useful with port 0).
  absl::StatusOr<uint16_t> Listen(const std::string& address, uint16_t port);
  // Serves a socket already listening (socket activation); returns its port.
  absl::StatusOr<uint16_t> Adopt(int fd);
  // The address the listener is bound to, "127.0.0.1:8080" or "[::]:8080".
  std::string LocalAddress() const;
  void Start();
  void SetTls(std::shared_ptr<asio::ssl::context> tls);
  // Closes the listener and every idle connection; connections busy with a request finish it,
  // answer with "Connection: close" and end.
  void StopAccepting();
  int active_connections() const { return active_.load(); }

 private:
  struct Session {
    beast::tcp_stream* stream = nullptr;
    std::atomic<bool> idle{false};
  };
  // Shared with every connection coroutine, so that a coroutine frame destroyed late (with the
  // io_context, after a drain timed out) never touches a destroyed server.
  struct Registry {
    std::mutex mu;
    std::list<std::shared_ptr<Session>> sessions;
  };

  asio::awaitable<void> AcceptLoop();
  asio::awaitable<void> Serve(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  template <typename Stream>
  asio::awaitable<void> ServeOn(Stream& stream, const asio::ip::address& peer);
  template <typename Stream>
  asio::awaitable<void> Reject(Stream& stream, beast::flat_buffer& buffer, http::status status,
                               absl::string_view message, const char* outcome);
  void Count(const char* outcome);

  asio::io_context& io_;
  const HttpServerOptions options_;
  Handler handler_;
  prometheus::Family<prometheus::Counter>& connections_;
  tcp::acceptor acceptor_;
  std::atomic<int> active_{0};
  std::atomic<bool> stopping_{false};
  std::shared_ptr<Registry> registry_ = std::make_shared<Registry>();
  std::mutex tls_mu_;
  std::shared_ptr<asio::ssl::context> tls_;  // null: plain HTTP
};

}  // namespace triage::daemon
