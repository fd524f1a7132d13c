/*
 * TLS over libuv streams with OpenSSL 3 memory BIOs: ciphertext read from
 * the socket is written into the SSL object, plaintext comes out of it; the
 * other way for writes. The socket layer (net/sock.c) does the plumbing;
 * this file owns the contexts: a server context per TLS listener (several
 * certificates chosen by SNI, a minimum protocol version, ALPN http/1.1)
 * and a client context per TLS backend (verification against the system
 * store or a CA file, SNI, optional client certificate, session reuse).
 */
#ifndef LV_NET_TLS_H
#define LV_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

struct lv_tls_cert {
    char *cert; /* PEM chain file */
    char *key;  /* PEM key file */
};

struct lv_tls_listen_cfg {
    struct lv_tls_cert *certs; /* the first is the default */
    size_t ncerts;
    int min_version;            /* TLS1_2_VERSION or TLS1_3_VERSION */
    char *ciphers;              /* TLS 1.2 cipher list, or NULL for OpenSSL's default */
    char *ciphersuites;         /* TLS 1.3 suites, or NULL */
    uint64_t handshake_timeout; /* ms */
    bool h2;                    /* ALPN offers h2 before http/1.1 (issue 17) */
};

struct lv_tls_backend_cfg {
    bool enabled;      /* https:// */
    char *ca_file;     /* NULL: the system store */
    char *server_name; /* SNI and verified name; NULL: the URL host */
    bool insecure_skip_verify;
    char *cert, *key; /* client certificate (mTLS), or NULL */
    int min_version;
};

/* A server context for a listener; NULL after writing why into err. */
SSL_CTX *lv_tls_server_ctx(const struct lv_tls_listen_cfg *cfg, char *err, size_t errcap);

/* A client context for a backend; NULL after writing why into err. */
SSL_CTX *lv_tls_client_ctx(const struct lv_tls_backend_cfg *cfg, char *err, size_t errcap);

/* A short description of the last OpenSSL error (thread-local queue),
 * cleared. */
const char *lv_tls_error(char *buf, size_t cap);

#endif
