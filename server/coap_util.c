/* CoAP helpers shared by the bootstrap and registration interfaces. */
#include "server/coap_util.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/metrics.h"

/* libcoap draws random bytes for every confirmable message it sends (the
 * retransmission timeout) and for every new session (first message id,
 * token seed); its default generator makes a getrandom() system call each
 * time, eight per bootstrap. These come from a per-thread pool refilled
 * from libsodium's CSPRNG (lwdm never forks). */
static int pool_rand(void *out, size_t len)
{
    static _Thread_local uint8_t pool[256];
    static _Thread_local size_t left;
    uint8_t *o = out;
    while (len > 0) {
        if (left == 0) {
            randombytes_buf(pool, sizeof pool);
            left = sizeof pool;
        }
        size_t n = len < left ? len : left;
        memcpy(o, pool + sizeof pool - left, n);
        left -= n;
        o += n;
        len -= n;
    }
    return 1;
}

void cu_install_prng(void)
{
    coap_set_prng(pool_rand);
}

bool cu_is_local_port(coap_session_t *cs, uint16_t port)
{
    const coap_address_t *a = coap_session_get_addr_local(cs);
    return port && a && coap_address_get_port(a) == port;
}

bool cu_is_secure(coap_session_t *cs)
{
    coap_proto_t p = coap_session_get_proto(cs);
    return p == COAP_PROTO_DTLS || p == COAP_PROTO_TLS;
}

bool cu_is_reliable(coap_session_t *cs)
{
    coap_proto_t p = coap_session_get_proto(cs);
    return p == COAP_PROTO_TCP || p == COAP_PROTO_TLS;
}

const char *cu_proto_name(coap_session_t *cs)
{
    switch (coap_session_get_proto(cs)) {
    case COAP_PROTO_DTLS: return "dtls";
    case COAP_PROTO_TCP: return "tcp";
    case COAP_PROTO_TLS: return "tls";
    default: return "udp";
    }
}

/* The first Uri-Query option `key=value` (or, unless need_value, a bare `key`). */
static coap_opt_t *find_query(const coap_pdu_t *req, const char *key, bool need_value, size_t *vlen,
                              const uint8_t **val)
{
    size_t klen = strlen(key);
    coap_opt_filter_t f;
    coap_option_filter_clear(&f);
    coap_option_filter_set(&f, COAP_OPTION_URI_QUERY);
    coap_opt_iterator_t it;
    coap_option_iterator_init(req, &it, &f);
    coap_opt_t *o;
    while ((o = coap_option_next(&it))) {
        const uint8_t *v = coap_opt_value(o);
        size_t n = coap_opt_length(o);
        if (n < klen || memcmp(v, key, klen) != 0 || (n > klen && v[klen] != '=') || (need_value && n == klen))
            continue;
        *val = n > klen ? v + klen + 1 : v + n;
        *vlen = n > klen ? n - klen - 1 : 0;
        return o;
    }
    return NULL;
}

void cu_query_get(const coap_pdu_t *req, const char *key, char *out, size_t cap, bool *found, bool *bad)
{
    size_t n = 0;
    const uint8_t *v = NULL;
    *bad = false;
    out[0] = 0;
    *found = find_query(req, key, true, &n, &v) != NULL;
    if (!*found)
        return;
    if (n >= cap || memchr(v, 0, n)) {
        *bad = true;
        return;
    }
    memcpy(out, v, n);
    out[n] = 0;
}

bool cu_query_has(const coap_pdu_t *req, const char *key)
{
    size_t n;
    const uint8_t *v;
    return find_query(req, key, false, &n, &v) != NULL;
}

bool cu_valid_endpoint(const char *ep, size_t max)
{
    size_t n = strlen(ep);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)ep[i] < 0x21 || (unsigned char)ep[i] == 0x7f)
            return false;
    return true;
}

void cu_reply_error(coap_pdu_t *resp, int cls, int detail, const char *msg)
{
    metrics_coap(true, (cls << 5) | detail);
    coap_pdu_set_code(resp, (coap_pdu_code_t)COAP_RESPONSE_CODE(cls * 100 + detail));
    if (msg)
        coap_add_data(resp, strlen(msg), (const uint8_t *)msg);
}

int cu_pdu_uint_option(const coap_pdu_t *pdu, uint16_t opt, int none)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, opt, &it);
    if (!o)
        return none;
    return (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o));
}

void cu_peer_str(coap_session_t *cs, char *buf, size_t cap)
{
    const coap_address_t *a = coap_session_get_addr_remote(cs);
    buf[0] = 0;
    if (!a)
        return;
    unsigned char tmp[INET6_ADDRSTRLEN + 16];
    size_t n = coap_print_addr(a, tmp, sizeof tmp);
    snprintf(buf, cap, "%.*s", (int)n, (const char *)tmp);
}

static void release_body(coap_session_t *cs, void *app_ptr)
{
    (void)cs;
    free(app_ptr);
}

bool cu_request_options(coap_pdu_t *pdu, const char *root, const lwm2m_path_t *path, int cf, int accept, int observe,
                        const char *query, bool has_payload, const uint8_t token[8])
{
    bool ok = coap_add_token(pdu, 8, token);
    uint8_t b[4];
    if (observe >= 0)
        ok = ok && coap_add_option(pdu, COAP_OPTION_OBSERVE, coap_encode_var_safe(b, sizeof b, (unsigned)observe), b);
    /* Uri-Path: the alternate root's segments, then the ids */
    if (root && root[0]) {
        const char *p = root;
        while (*p) {
            while (*p == '/')
                p++;
            const char *e = strchr(p, '/');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n)
                ok = ok && coap_add_option(pdu, COAP_OPTION_URI_PATH, n, (const uint8_t *)p);
            p += n;
        }
    }
    for (int i = 0; path && i < path->len; i++) {
        char seg[8];
        int n = snprintf(seg, sizeof seg, "%u", path->ids[i]);
        ok = ok && coap_add_option(pdu, COAP_OPTION_URI_PATH, (size_t)n, (const uint8_t *)seg);
    }
    if (cf != LWM2M_CF_NONE && has_payload)
        ok = ok && coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT, coap_encode_var_safe(b, sizeof b, (unsigned)cf), b);
    if (query) {
        const char *p = query;
        while (*p) {
            const char *e = strchr(p, '&');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (n)
                ok = ok && coap_add_option(pdu, COAP_OPTION_URI_QUERY, n, (const uint8_t *)p);
            p += n + (e ? 1 : 0);
        }
    }
    if (accept != LWM2M_CF_NONE)
        ok = ok && coap_add_option(pdu, COAP_OPTION_ACCEPT, coap_encode_var_safe(b, sizeof b, (unsigned)accept), b);
    return ok;
}

coap_mid_t cu_send_request(coap_session_t *cs, int method, const char *root, const lwm2m_path_t *path, int cf,
                           int accept, int observe, const char *query, const uint8_t *payload, size_t len,
                           const uint8_t token[8])
{
    coap_pdu_t *pdu = coap_pdu_init(COAP_MESSAGE_CON, (coap_pdu_code_t)method, coap_new_message_id(cs),
                                    coap_session_max_pdu_size(cs));
    if (!pdu)
        return COAP_INVALID_MID;
    if (!cu_request_options(pdu, root, path, cf, accept, observe, query, payload != NULL, token)) {
        coap_delete_pdu(pdu);
        return COAP_INVALID_MID;
    }
    if (payload && len) {
        /* libcoap keeps `data` until the transfer ends: hand it a copy. */
        uint8_t *copy = malloc(len);
        if (copy)
            memcpy(copy, payload, len);
        if (!copy || !coap_add_data_large_request(cs, pdu, len, copy, release_body, copy)) {
            free(copy);
            coap_delete_pdu(pdu);
            return COAP_INVALID_MID;
        }
    }
    metrics_coap(true, method);
    return coap_send(cs, pdu); /* takes the pdu, even on failure */
}
