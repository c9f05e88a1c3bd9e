// The TLS server context of the ingest listener, built from the config's PEM certificate chain
// and key: TLS 1.2 or later (config), forward-secret AEAD suites only for 1.2, the server's
// order of preference, no renegotiation, no compression.
#pragma once

#include <boost/asio/ssl.hpp>

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "config/config.h"

namespace triage::daemon {

struct ServerTls {
  std::shared_ptr<boost::asio::ssl::context> context;
  absl::Time not_after;  // of the leaf certificate
};

// An error names what is wrong (unreadable PEM, a key that does not match the certificate)
// without ever quoting the key.
absl::StatusOr<ServerTls> MakeServerTls(const config::TlsOptions& options);

}  // namespace triage::daemon
