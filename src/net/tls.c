/*
 * TLS contexts. A listener's context holds its first certificate; the SNI
 * callback switches a connection to the context whose certificate matches
 * the name the client asked for (X509_check_host: CN and SANs, wildcards
 * included), and keeps the default otherwise.
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sni_table {
    size_t n;
    SSL_CTX **ctx; /* [n]: one per certificate, [0] is the default */
    X509 **cert;
};

static int sni_index = -1;
static CRYPTO_ONCE once = CRYPTO_ONCE_STATIC_INIT;

static void sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    struct sni_table *t = ptr;
    if (t == NULL) return;
    for (size_t i = 1; i < t->n; i++)
        SSL_CTX_free(t->ctx[i]);
    free(t->ctx);
    free(t->cert);
    free(t);
}

static void init_once(void)
{
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_free);
}

const char *lv_tls_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, cap, "unknown TLS error");
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    /* Issue 17: h2 first when the listener speaks HTTP/2 (the server's
     * preference decides). */
    static const unsigned char h2[] = "\x02h2\x08http/1.1";
    static const unsigned char http11[] = "\x08http/1.1";
    bool with_h2 = arg != NULL;
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, with_h2 ? h2 : http11,
                              with_h2 ? sizeof(h2) - 1 : sizeof(http11) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* the client speaks no http/1.1: no ALPN, go on */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct sni_table *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || t == NULL) return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < t->n; i++) {
        if (X509_check_host(t->cert[i], name, 0, 0, NULL) == 1) {
            if (i > 0) SSL_set_SSL_CTX(ssl, t->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* no match: the default certificate */
}

static SSL_CTX *one_server_ctx(const struct lv_tls_listen_cfg *cfg, const struct lv_tls_cert *c,
                               char *err, size_t errcap)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errcap, "%s", lv_tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, cfg->min_version ? cfg->min_version : TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if ((cfg->ciphers && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) ||
        (cfg->ciphersuites && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)) {
        snprintf(err, errcap, "invalid cipher setting: %s", lv_tls_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1) {
        snprintf(err, errcap, "%s: %s", c->cert, lv_tls_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errcap, "%s: %s", c->key, lv_tls_error(e, sizeof(e)));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, cfg->h2 ? (void *)alpn_select : NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    return ctx;
}

SSL_CTX *lv_tls_server_ctx(const struct lv_tls_listen_cfg *cfg, char *err, size_t errcap)
{
    CRYPTO_THREAD_run_once(&once, init_once);
    if (cfg->ncerts == 0) {
        snprintf(err, errcap, "no certificate");
        return NULL;
    }
    struct sni_table *t = calloc(1, sizeof(*t));
    if (t == NULL) return NULL;
    t->ctx = calloc(cfg->ncerts, sizeof(*t->ctx));
    t->cert = calloc(cfg->ncerts, sizeof(*t->cert));
    if (t->ctx == NULL || t->cert == NULL) {
        sni_free(NULL, t, NULL, 0, 0, NULL);
        return NULL;
    }
    for (size_t i = 0; i < cfg->ncerts; i++) {
        t->ctx[i] = one_server_ctx(cfg, &cfg->certs[i], err, errcap);
        if (t->ctx[i] == NULL) {
            SSL_CTX *first = t->ctx[0];
            t->n = i;
            sni_free(NULL, t, NULL, 0, 0, NULL);
            if (i > 0) SSL_CTX_free(first);
            return NULL;
        }
        t->cert[i] = SSL_CTX_get0_certificate(t->ctx[i]);
        t->n = i + 1;
    }
    SSL_CTX *ctx = t->ctx[0];
    /* The default context owns the table (freed with it). */
    SSL_CTX_set_ex_data(ctx, sni_index, t);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    for (size_t i = 1; i < t->n; i++) {
        SSL_CTX_set_tlsext_servername_callback(t->ctx[i], on_servername);
        SSL_CTX_set_tlsext_servername_arg(t->ctx[i], t);
    }
    return ctx;
}

/* Keeps a copy: OpenSSL marks the connection's own session not resumable
 * when that connection is freed without a close_notify, which is how pooled
 * backend connections end. */
static int keep_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION **slot = SSL_get_app_data(ssl);
    if (slot == NULL) return 0;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (copy == NULL) return 0;
    if (*slot) SSL_SESSION_free(*slot);
    *slot = copy;
    return 0;
}

SSL_CTX *lv_tls_client_ctx(const struct lv_tls_backend_cfg *cfg, char *err, size_t errcap)
{
    CRYPTO_THREAD_run_once(&once, init_once);
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errcap, "%s", lv_tls_error(e, sizeof(e)));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, cfg->min_version ? cfg->min_version : TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    if (!cfg->insecure_skip_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = cfg->ca_file ? SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL)
                              : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, errcap, "%s: %s", cfg->ca_file ? cfg->ca_file : "system CA store",
                     lv_tls_error(e, sizeof(e)));
            SSL_CTX_free(ctx);
            return NULL;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (cfg->cert) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errcap, "client certificate %s: %s", cfg->cert,
                     lv_tls_error(e, sizeof(e)));
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    /* Sessions are kept by levee (per backend and worker: the SSL's app
     * data points at the slot) and offered again on the next connection. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, keep_session);
    return ctx;
}
