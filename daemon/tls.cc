#include "daemon/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <ctime>

#include "absl/strings/str_cat.h"

namespace triage::daemon {
namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites with forward secrecy and AEAD (TLS 1.3 suites are OpenSSL's defaults, all of
// which qualify). The list Mozilla's "intermediate" profile gives, without the DHE ones.
constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace

absl::StatusOr<ServerTls> MakeServerTls(const config::TlsOptions& options) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, options.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                                  SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return absl::InternalError(absl::StrCat("TLS cipher list: ", OpenSslError()));
  }
  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(options.certificate_pem), ec);
  if (ec) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("server.tls.certificate ", options.certificate_file,
                                                   ": not a PEM certificate chain (", ec.message(), ")"));
  }
  // Read here rather than by use_private_key, whose default passphrase prompt would wait on a
  // terminal for an encrypted key: one is refused instead.
  BIO* bio = BIO_new_mem_buf(options.key_pem.data(), static_cast<int>(options.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(
      bio, nullptr, [](char*, int, int, void*) { return 0; }, nullptr);
  BIO_free(bio);
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "server.tls.key ", options.key_file, ": not an unencrypted PEM private key"));
  }
  const bool matches = SSL_CTX_use_PrivateKey(native, key) == 1 && SSL_CTX_check_private_key(native) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("server.tls.key ", options.key_file,
                                                   " does not match the certificate ",
                                                   options.certificate_file));
  }
  ServerTls out;
  out.context = std::move(context);
  if (X509* leaf = SSL_CTX_get0_certificate(native)) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1) out.not_after = absl::FromTimeT(timegm(&tm));
  }
  return out;
}

}  // namespace triage::daemon
