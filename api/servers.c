/* api: /api/v1/lwm2m-servers (Administration -> LwM2M servers).
 *
 * Every write goes through server_from_json(), which validates a whole
 * representation: POST and PUT validate the body; PATCH validates the stored
 * representation with the merge patch applied. Secrets (psk,
 * provisionCredentials.password) are looked up in the request itself
 * (`ex`): absent keeps the stored value, null clears it, a string sets it.
 * Fields that only belong to another security mode are refused when the
 * request sends them, and dropped when they are merely inherited from the
 * stored state (PATCH securityMode from psk to nosec clears the PSK). */
#include "api/api_int.h"
#include "server/common/log.h"
#include "server/tasks/expr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_CHARS 128
#define IDENTITY_MAX_BYTES 128
#define PSK_MAX_BYTES 256
#define CERT_MAX_BYTES (16 * 1024)
#define INT32_LIMIT 2147483647LL

typedef struct {
    const char *name;
    int value;
} enum_t;

static const enum_t k_types[] = {{"management", DB_SRV_MANAGEMENT}, {"bootstrap", DB_SRV_BOOTSTRAP}, {NULL, 0}};
static const enum_t k_transports[] = {{"udp", DB_TRANSPORT_UDP}, {"tcp", DB_TRANSPORT_TCP}, {NULL, 0}};
static const enum_t k_modes[] = {
    {"nosec", DB_SEC_NOSEC}, {"psk", DB_SEC_PSK}, {"cert", DB_SEC_CERT}, {"certEst", DB_SEC_CERT_EST}, {NULL, 0}};
/* SMS security mode as written to /0/6 */
static const enum_t k_sms_modes[] = {{"dtls", 1}, {"securePacket", 2}, {"nosec", 3}, {NULL, 0}};
static const char *const k_bindings[] = {"U", "UQ", "S", "SQ", "US", "UQS", NULL};

static const char *const k_fields[] = {
    "name", "type", "transport", "ssid", "uri", "clientHoldOffTime", "bootstrapAccountTimeout", "binding",
    "lifetime", "storeNotifications", "securityMode", "pskIdentity", "psk", "serverCertificate", "sms",
    "configureDeviceOnTargetServer", "provisionCredentials",
    /* read-only: accepted (so a GET body can be PUT back) and ignored */
    "id", "domain", "pskSet", "createdAt", "updatedAt", NULL};
static const char *const k_sms_fields[] = {"enabled", "number", "securityMode", NULL};
static const char *const k_prov_fields[] = {"apiUri", "user", "password", "passwordSet", NULL};

static const char *enum_name(const enum_t *t, int value)
{
    for (; t->name; t++)
        if (t->value == value)
            return t->name;
    return NULL;
}

/* Reads an enum field; returns false (error added) when it is invalid. */
static bool get_enum(json_t *o, const char *key, const char *field, api_verr_t *v, const enum_t *t, int dflt, int *out)
{
    *out = dflt;
    const char *s;
    if (!api_get_string(o, key, field, v, &s))
        return api_absent(o, key);
    for (const enum_t *e = t; e->name; e++)
        if (strcmp(e->name, s) == 0) {
            *out = e->value;
            return true;
        }
    char list[128] = "";
    for (const enum_t *e = t; e->name; e++) {
        if (list[0])
            strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, e->name, sizeof list - strlen(list) - 1);
    }
    api_verr_add(v, 422, field, "must be one of: %s", list);
    return false;
}

/* ------------------------------------------------------------ URI rules */
static bool host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '.' && h[i] != '_')
            return false;
    return true;
}

static bool ipv6_ok(const char *h, size_t n)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, h, n);
    buf[n] = 0;
    struct in6_addr a;
    return inet_pton(AF_INET6, buf, &a) == 1;
}

char *api_server_uri_normalise(const char *in, int security_mode, int type, int transport, char *msg, size_t msglen)
{
    bool secure = security_mode != DB_SEC_NOSEC;
    bool tcp = transport == DB_TRANSPORT_TCP;
    const char *want = secure ? (tcp ? "coaps+tcp" : "coaps") : (tcp ? "coap+tcp" : "coap");
    unsigned dport = type == DB_SRV_BOOTSTRAP ? (secure ? 5694 : 5693) : (secure ? 5684 : 5683);
    if (!in || !*in) {
        snprintf(msg, msglen, "must not be empty");
        return NULL;
    }
    for (const char *p = in; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            snprintf(msg, msglen, "must not contain spaces or control characters");
            return NULL;
        }
    const char *rest = in;
    const char *sep = strstr(in, "://");
    if (sep) {
        size_t sl = (size_t)(sep - in);
        char scheme[16];
        if (sl == 0 || sl >= sizeof scheme) {
            snprintf(msg, msglen, "unsupported scheme (use coap, coaps, coap+tcp or coaps+tcp)");
            return NULL;
        }
        for (size_t i = 0; i < sl; i++)
            scheme[i] = (char)tolower((unsigned char)in[i]);
        scheme[sl] = 0;
        if (strcmp(scheme, "coap") && strcmp(scheme, "coaps") && strcmp(scheme, "coap+tcp") &&
            strcmp(scheme, "coaps+tcp")) {
            snprintf(msg, msglen, "unsupported scheme '%s' (use coap, coaps, coap+tcp or coaps+tcp)", scheme);
            return NULL;
        }
        if (strcmp(scheme, want) != 0) {
            snprintf(msg, msglen, "scheme '%s' contradicts securityMode %s and transport %s (expected %s://)", scheme,
                     enum_name(k_modes, security_mode), tcp ? "tcp" : "udp", want);
            return NULL;
        }
        rest = sep + 3;
    } else if (strchr(in, '/') && strchr(in, ':') && strstr(in, ":/")) {
        snprintf(msg, msglen, "malformed scheme (expected %s://host:port)", want);
        return NULL;
    }
    size_t alen = strcspn(rest, "/?#");
    const char *tail = rest + alen;
    if (*tail && strcmp(tail, "/") != 0) {
        snprintf(msg, msglen, "must not have a path, query or fragment");
        return NULL;
    }
    if (memchr(rest, '@', alen)) {
        snprintf(msg, msglen, "must not contain user information");
        return NULL;
    }
    const char *host = rest, *port = NULL;
    size_t hlen, plen = 0;
    bool v6 = false;
    if (alen && rest[0] == '[') {
        const char *close = memchr(rest, ']', alen);
        if (!close) {
            snprintf(msg, msglen, "unterminated IPv6 literal");
            return NULL;
        }
        host = rest + 1;
        hlen = (size_t)(close - host);
        v6 = true;
        const char *after = close + 1;
        size_t left = alen - (size_t)(after - rest);
        if (left) {
            if (*after != ':') {
                snprintf(msg, msglen, "unexpected text after the IPv6 literal");
                return NULL;
            }
            port = after + 1;
            plen = left - 1;
        }
    } else {
        size_t colons = 0;
        for (size_t i = 0; i < alen; i++)
            colons += rest[i] == ':';
        if (colons > 1) { /* a bare IPv6 address: no port possible */
            hlen = alen;
            v6 = true;
        } else {
            const char *c = memchr(rest, ':', alen);
            hlen = c ? (size_t)(c - rest) : alen;
            if (c) {
                port = c + 1;
                plen = alen - hlen - 1;
            }
        }
    }
    if (v6 ? !ipv6_ok(host, hlen) : !host_name_ok(host, hlen)) {
        snprintf(msg, msglen, v6 ? "invalid IPv6 address" : "invalid host name");
        return NULL;
    }
    unsigned long pv = dport;
    if (port) {
        if (plen == 0 || plen > 5) {
            snprintf(msg, msglen, "invalid port");
            return NULL;
        }
        pv = 0;
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) {
                snprintf(msg, msglen, "invalid port");
                return NULL;
            }
            pv = pv * 10 + (unsigned long)(port[i] - '0');
        }
        if (pv < 1 || pv > 65535) {
            snprintf(msg, msglen, "port must be from 1 to 65535");
            return NULL;
        }
    }
    size_t cap = strlen(want) + hlen + 16;
    char *out = malloc(cap);
    if (!out) {
        snprintf(msg, msglen, "out of memory");
        return NULL;
    }
    snprintf(out, cap, "%s://%s%.*s%s:%lu", want, v6 ? "[" : "", (int)hlen, host, v6 ? "]" : "", pv);
    return out;
}

/* ---------------------------------------------------------- validation */
static bool sent(json_t *ex, const char *key) { return !api_absent(ex, key); }


/* Checks a value that may be an expression. */
static void check_template(const char *s, const char *field, api_verr_t *v)
{
    if (!expr_has_parts(s))
        return;
    expr_error_t e;
    memset(&e, 0, sizeof e);
    if (expr_check(s, &e) != 0)
        api_verr_add(v, 422, field, "invalid expression at position %zu: %s", e.pos, e.msg);
}


static bool is_http_url(const char *s)
{
    const char *h = NULL;
    if (strncmp(s, "http://", 7) == 0)
        h = s + 7;
    else if (strncmp(s, "https://", 8) == 0)
        h = s + 8;
    if (!h || !*h || *h == '/' || *h == ':' || *h == '?' || *h == '#')
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool sms_number_ok(const char *s)
{
    if (*s == '+')
        s++;
    size_t n = strlen(s);
    if (n < 3 || n > 20)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* Builds *s (zeroed first; caller frees with db_server_free) from the full
 * representation `doc`, the request `ex` (for secrets and "sent" checks) and
 * the stored row (NULL when creating). Errors go to v. */
static void server_from_json(json_t *doc, json_t *ex, const db_server_t *stored, db_server_t *s, api_verr_t *v)
{
    memset(s, 0, sizeof *s);
    s->client_hold_off_time = -1;
    s->bootstrap_account_timeout = -1;
    s->sms_security_mode = -1;
    api_check_unknown(doc, k_fields, "", v);
    const char *str;
    int64_t iv;

    if (api_get_string(doc, "name", "name", v, &str)) {
        size_t n = api_utf8_len(str);
        if (n < 1 || n > NAME_MAX_CHARS)
            api_verr_add(v, 422, "name", "must be 1 to %d characters long", NAME_MAX_CHARS);
        else if (api_has_ctl(str))
            api_verr_add(v, 422, "name", "must not contain control characters");
        else
            s->name = strdup(str);
    } else if (api_absent(doc, "name")) {
        api_verr_add(v, 422, "name", "is required");
    }

    bool enums_ok = get_enum(doc, "type", "type", v, k_types, DB_SRV_MANAGEMENT, &s->type);
    enums_ok &= get_enum(doc, "transport", "transport", v, k_transports, DB_TRANSPORT_UDP, &s->transport);
    enums_ok &= get_enum(doc, "securityMode", "securityMode", v, k_modes, DB_SEC_NOSEC, &s->security_mode);

    if (api_get_int(doc, "ssid", "ssid", v, &iv)) {
        if (iv < 1 || iv > 65534)
            api_verr_add(v, 422, "ssid", "must be from 1 to 65534");
        else
            s->ssid = (int)iv;
    } else if (api_absent(doc, "ssid") && s->type == DB_SRV_MANAGEMENT) {
        api_verr_add(v, 422, "ssid", "is required for management servers");
    }

    if (api_get_string(doc, "uri", "uri", v, &str)) {
        if (enums_ok) {
            char msg[200];
            s->uri = api_server_uri_normalise(str, s->security_mode, s->type, s->transport, msg, sizeof msg);
            if (!s->uri)
                api_verr_add(v, 422, "uri", "%s", msg);
        }
    } else if (api_absent(doc, "uri")) {
        api_verr_add(v, 422, "uri", "is required");
    }

    if (api_get_int(doc, "clientHoldOffTime", "clientHoldOffTime", v, &iv)) {
        if (iv < 0 || iv > INT32_LIMIT)
            api_verr_add(v, 422, "clientHoldOffTime", "must be from 0 to %lld seconds", INT32_LIMIT);
        else
            s->client_hold_off_time = iv;
    }
    if (api_get_int(doc, "bootstrapAccountTimeout", "bootstrapAccountTimeout", v, &iv)) {
        if (iv < 0 || iv > INT32_LIMIT)
            api_verr_add(v, 422, "bootstrapAccountTimeout", "must be from 0 to %lld seconds", INT32_LIMIT);
        else
            s->bootstrap_account_timeout = iv;
    }

    snprintf(s->binding, sizeof s->binding, "U");
    if (api_get_string(doc, "binding", "binding", v, &str)) {
        bool ok = false;
        for (const char *const *b = k_bindings; *b; b++)
            if (strcmp(*b, str) == 0)
                ok = true;
        if (ok)
            snprintf(s->binding, sizeof s->binding, "%s", str);
        else
            api_verr_add(v, 422, "binding", "must be one of: U, UQ, S, SQ, US, UQS");
    }

    s->lifetime = 86400;
    if (api_get_int(doc, "lifetime", "lifetime", v, &iv)) {
        if (iv < 1 || iv > INT32_LIMIT)
            api_verr_add(v, 422, "lifetime", "must be from 1 to %lld seconds", INT32_LIMIT);
        else
            s->lifetime = iv;
    }
    bool b;
    if (api_get_bool(doc, "storeNotifications", "storeNotifications", v, &b))
        s->store_notifications = b;

    /* --- credentials */
    if (api_get_string(doc, "pskIdentity", "pskIdentity", v, &str)) {
        size_t n = strlen(str);
        if (n < 1 || n > IDENTITY_MAX_BYTES)
            api_verr_add(v, 422, "pskIdentity",
                         "must be 1 to %d bytes long (null = the device's endpoint name)", IDENTITY_MAX_BYTES);
        else if (api_has_ctl(str))
            api_verr_add(v, 422, "pskIdentity", "must not contain control characters");
        else {
            check_template(str, "pskIdentity", v);
            s->psk_identity = strdup(str);
        }
    }
    const char *psk = NULL;
    bool psk_err = false;
    size_t nerr = json_array_size(v->errors);
    api_secret_op_t psk_op = api_secret_op(ex, "psk", "psk", v, &psk);
    if (psk_op == API_SECRET_SET) {
        size_t n = strlen(psk);
        if (n < 1 || n > PSK_MAX_BYTES)
            api_verr_add(v, 422, "psk", "must be 1 to %d bytes long", PSK_MAX_BYTES);
        else {
            check_template(psk, "psk", v);
            s->psk = strdup(psk);
        }
    } else if (psk_op == API_SECRET_KEEP && stored && stored->psk) {
        s->psk = strdup(stored->psk);
    }
    psk_err = json_array_size(v->errors) != nerr;

    if (api_get_string(doc, "serverCertificate", "serverCertificate", v, &str)) {
        size_t n = strlen(str), got = 0;
        uint8_t *der = malloc(n / 4 * 3 + 4);
        const char *end = NULL;
        if (der && sodium_base642bin(der, n / 4 * 3 + 4, str, n, " \t\r\n", &got, &end,
                                     sodium_base64_VARIANT_ORIGINAL) == 0 && end == str + n) {
            if (got == 0 || der[0] != 0x30)
                api_verr_add(v, 422, "serverCertificate", "must be a DER certificate (an ASN.1 SEQUENCE)");
            else if (got > CERT_MAX_BYTES)
                api_verr_add(v, 422, "serverCertificate", "must be at most %d bytes", CERT_MAX_BYTES);
            else {
                s->server_cert = der;
                s->server_cert_len = got;
                der = NULL;
            }
        } else {
            api_verr_add(v, 422, "serverCertificate", "must be base64 (standard alphabet, padded)");
        }
        free(der);
    }

    /* --- SMS */
    json_t *sms = NULL;
    if (api_get_object(doc, "sms", "sms", v, &sms)) {
        api_check_unknown(sms, k_sms_fields, "sms.", v);
        if (api_get_bool(sms, "enabled", "sms.enabled", v, &b))
            s->sms_enabled = b;
        if (api_get_string(sms, "number", "sms.number", v, &str)) {
            if (!sms_number_ok(str))
                api_verr_add(v, 422, "sms.number", "must be a phone number: optional +, then 3 to 20 digits");
            else
                s->sms_number = strdup(str);
        }
        int m;
        if (!api_absent(sms, "securityMode") && get_enum(sms, "securityMode", "sms.securityMode", v, k_sms_modes, -1, &m))
            s->sms_security_mode = m;
        if (s->sms_enabled && !strchr(s->binding, 'S'))
            api_verr_add(v, 422, "sms.enabled", "SMS needs a binding with S (S, SQ, US or UQS)");
        if (s->sms_enabled && api_absent(sms, "number"))
            api_verr_add(v, 422, "sms.number", "is required when SMS is enabled");
    }

    /* --- target server */
    if (api_get_bool(doc, "configureDeviceOnTargetServer", "configureDeviceOnTargetServer", v, &b))
        s->configure_device_on_target = b;
    json_t *prov = NULL;
    if (api_get_object(doc, "provisionCredentials", "provisionCredentials", v, &prov)) {
        s->provision_credentials = true;
        api_check_unknown(prov, k_prov_fields, "provisionCredentials.", v);
        if (api_get_string(prov, "apiUri", "provisionCredentials.apiUri", v, &str)) {
            if (!is_http_url(str) || strlen(str) > 2048)
                api_verr_add(v, 422, "provisionCredentials.apiUri", "must be an http:// or https:// URL");
            else
                s->prov_api_uri = strdup(str);
        } else if (api_absent(prov, "apiUri")) {
            api_verr_add(v, 422, "provisionCredentials.apiUri", "is required");
        }
        if (api_get_string(prov, "user", "provisionCredentials.user", v, &str)) {
            size_t n = api_utf8_len(str);
            if (n < 1 || n > NAME_MAX_CHARS || api_has_ctl(str))
                api_verr_add(v, 422, "provisionCredentials.user", "must be 1 to %d printable characters",
                             NAME_MAX_CHARS);
            else
                s->prov_user = strdup(str);
        } else if (api_absent(prov, "user")) {
            api_verr_add(v, 422, "provisionCredentials.user", "is required");
        }
        json_t *exprov = json_object_get(ex, "provisionCredentials");
        const char *pw = NULL;
        nerr = json_array_size(v->errors);
        api_secret_op_t op = json_is_object(exprov)
                             ? api_secret_op(exprov, "password", "provisionCredentials.password", v, &pw)
                             : API_SECRET_KEEP;
        if (op == API_SECRET_SET) {
            if (strlen(pw) < 1 || strlen(pw) > PSK_MAX_BYTES)
                api_verr_add(v, 422, "provisionCredentials.password", "must be 1 to %d bytes long", PSK_MAX_BYTES);
            else
                s->prov_password = strdup(pw);
        } else if (op == API_SECRET_KEEP && stored && stored->provision_credentials && stored->prov_password) {
            s->prov_password = strdup(stored->prov_password);
        }
        if (!s->prov_password && json_array_size(v->errors) == nerr)
            api_verr_add(v, 422, "provisionCredentials.password", "is required");
    }
    if (s->configure_device_on_target && !prov)
        api_verr_add(v, 422, "provisionCredentials",
                     "apiUri, user and password are required when configureDeviceOnTargetServer is true");

    /* --- fields that belong to another security mode */
    if (!enums_ok)
        return;
    bool wants_psk = s->security_mode == DB_SEC_PSK;
    bool wants_cert = s->security_mode == DB_SEC_CERT || s->security_mode == DB_SEC_CERT_EST;
    const char *mode = enum_name(k_modes, s->security_mode);
    if (!wants_psk) {
        if (s->psk_identity && sent(ex, "pskIdentity"))
            api_verr_add(v, 422, "pskIdentity", "must be null for securityMode %s", mode);
        if (s->psk && sent(ex, "psk"))
            api_verr_add(v, 422, "psk", "must be null for securityMode %s", mode);
        free(s->psk_identity);
        s->psk_identity = NULL;
        if (s->psk) {
            sodium_memzero(s->psk, strlen(s->psk));
            free(s->psk);
            s->psk = NULL;
        }
    } else if (!s->psk && !psk_err) {
        api_verr_add(v, 422, "psk", "is required for securityMode psk (text, or an expression such as "
                                    "${string.secureRandom(16)})");
    }
    if (!wants_cert) {
        if (s->server_cert && sent(ex, "serverCertificate"))
            api_verr_add(v, 422, "serverCertificate", "must be null for securityMode %s", mode);
        free(s->server_cert);
        s->server_cert = NULL;
        s->server_cert_len = 0;
    } else if (!s->server_cert && api_absent(doc, "serverCertificate")) {
        api_verr_add(v, 422, "serverCertificate", "is required for securityMode %s", mode);
    }
}

/* ---------------------------------------------------------- rendering */
static json_t *server_to_json(const db_server_t *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(s->id));
    json_object_set_new(o, "domain", json_string(s->domain));
    json_object_set_new(o, "name", json_string(s->name));
    json_object_set_new(o, "type", json_string(enum_name(k_types, s->type) ? enum_name(k_types, s->type) : "management"));
    json_object_set_new(o, "transport",
                        json_string(enum_name(k_transports, s->transport) ? enum_name(k_transports, s->transport) : "udp"));
    json_object_set_new(o, "ssid", s->ssid ? json_integer(s->ssid) : json_null());
    json_object_set_new(o, "uri", json_string(s->uri));
    json_object_set_new(o, "clientHoldOffTime",
                        s->client_hold_off_time >= 0 ? json_integer(s->client_hold_off_time) : json_null());
    json_object_set_new(o, "bootstrapAccountTimeout",
                        s->bootstrap_account_timeout >= 0 ? json_integer(s->bootstrap_account_timeout) : json_null());
    json_object_set_new(o, "binding", json_string(s->binding));
    json_object_set_new(o, "lifetime", json_integer(s->lifetime));
    json_object_set_new(o, "storeNotifications", json_boolean(s->store_notifications));
    json_object_set_new(o, "securityMode",
                        json_string(enum_name(k_modes, s->security_mode) ? enum_name(k_modes, s->security_mode) : "nosec"));
    json_object_set_new(o, "pskIdentity", api_json_str_or_null(s->psk_identity));
    json_object_set_new(o, "pskSet", json_boolean(s->psk != NULL));
    /* An expression is a template, not a key: it is shown. */
    if (s->psk && expr_has_parts(s->psk))
        json_object_set_new(o, "psk", json_string(s->psk));
    if (s->server_cert) {
        size_t cap = sodium_base64_ENCODED_LEN(s->server_cert_len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (b64) {
            sodium_bin2base64(b64, cap, s->server_cert, s->server_cert_len, sodium_base64_VARIANT_ORIGINAL);
            json_object_set_new(o, "serverCertificate", json_string(b64));
            free(b64);
        }
    } else {
        json_object_set_new(o, "serverCertificate", json_null());
    }
    const char *sm = s->sms_security_mode >= 0 ? enum_name(k_sms_modes, s->sms_security_mode) : NULL;
    json_object_set_new(o, "sms",
                        json_pack("{s:b, s:o, s:o}", "enabled", s->sms_enabled, "number",
                                  api_json_str_or_null(s->sms_number), "securityMode", api_json_str_or_null(sm)));
    json_object_set_new(o, "configureDeviceOnTargetServer", json_boolean(s->configure_device_on_target));
    if (s->provision_credentials)
        json_object_set_new(o, "provisionCredentials",
                            json_pack("{s:o, s:o, s:b}", "apiUri", api_json_str_or_null(s->prov_api_uri), "user",
                                      api_json_str_or_null(s->prov_user), "passwordSet", s->prov_password != NULL));
    else
        json_object_set_new(o, "provisionCredentials", json_null());
    json_object_set_new(o, "createdAt", api_json_time(s->created_at, false));
    json_object_set_new(o, "updatedAt", api_json_time(s->updated_at, false));
    return o;
}

/* ------------------------------------------------------------ handlers */
enum MHD_Result api_servers_list(api_req_t *r)
{
    enum MHD_Result ret;
    int limit, offset;
    if (api_paging(r, &limit, &offset, &ret) != 0)
        return ret;
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_server_t *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    int rc = db_server_list(db, r->domain, api_query(r, "q"), limit, offset, &list, &n, &total);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "servers");
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, server_to_json(&list[i]));
    db_server_list_free(&list, n);
    return api_send_page(r, items, total, limit, offset);
}

/* Loads a server visible to the caller, or answers 404. */
static bool load_visible(api_req_t *r, db_t *db, db_server_t *s, enum MHD_Result *ret)
{
    int rc = db_server_get(db, r->id, s);
    if (rc == SQLITE_OK && !api_domain_visible(r, s->domain)) {
        db_server_free(s);
        rc = SQLITE_NOTFOUND;
    }
    if (rc != SQLITE_OK) {
        *ret = api_problem_db(r, rc, "LwM2M server");
        return false;
    }
    return true;
}

enum MHD_Result api_servers_get(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    db_server_t s;
    enum MHD_Result ret;
    if (!load_visible(r, db, &s, &ret))
        return ret;
    json_t *o = server_to_json(&s);
    db_server_free(&s);
    return api_send_json(r, 200, o, NULL);
}

/* Uniqueness rules that need the database: ssid (422) and name (409). */
static void check_unique(db_t *db, const db_server_t *s, api_verr_t *v, int *rc)
{
    *rc = SQLITE_OK;
    if (s->ssid) {
        char *other = NULL;
        int64_t oid = 0;
        int r2 = db_server_find_by_ssid(db, s->domain, s->ssid, s->id, &oid, &other);
        if (r2 == SQLITE_OK)
            api_verr_add(v, 422, "ssid", "ssid %d already used by server '%s'", s->ssid, other ? other : "?");
        else if (r2 != SQLITE_NOTFOUND)
            *rc = r2;
        free(other);
    }
    if (api_verr_any(v) || *rc != SQLITE_OK)
        return;
    db_server_t o;
    int r3 = db_server_get_by_name(db, s->domain, s->name, &o);
    if (r3 == SQLITE_OK && o.id != s->id)
        api_verr_add(v, 409, "name", "a server named '%s' already exists", s->name);
    else if (r3 != SQLITE_OK && r3 != SQLITE_NOTFOUND)
        *rc = r3;
    db_server_free(&o);
}

/* Validates doc and writes it (insert when stored is NULL), then answers. */
static enum MHD_Result save(api_req_t *r, db_t *db, json_t *doc, json_t *ex, const db_server_t *stored)
{
    api_verr_t v;
    api_verr_init(&v);
    db_server_t s;
    server_from_json(doc, ex, stored, &s, &v);
    if (api_verr_any(&v)) {
        db_server_free(&s);
        return api_problem_verr(r, &v, NULL);
    }
    s.domain = strdup(stored ? stored->domain : r->domain);
    if (stored) {
        s.id = stored->id;
        s.created_at = stored->created_at;
    }
    int rc;
    check_unique(db, &s, &v, &rc);
    if (rc == SQLITE_OK && api_verr_any(&v)) {
        db_server_free(&s);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    if (rc == SQLITE_OK)
        rc = stored ? db_server_update(db, &s) : db_server_insert(db, &s);
    if (rc != SQLITE_OK) {
        db_server_free(&s);
        return api_problem_db(r, rc, "LwM2M server");
    }
    int64_t id = s.id;
    db_server_free(&s);
    rc = db_commit(db);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "LwM2M server");
    db_server_t g;
    rc = db_server_get(db, id, &g);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "LwM2M server");
    json_t *o = server_to_json(&g);
    db_server_free(&g);
    LOG_INFO("api", "event=server_%s id=%lld", stored ? "updated" : "created", (long long)id);
    if (stored)
        return api_send_json(r, 200, o, NULL);
    char loc[64];
    snprintf(loc, sizeof loc, "/api/v1/lwm2m-servers/%lld", (long long)id);
    return api_send_json(r, 201, o, loc);
}

static enum MHD_Result do_create(api_req_t *r, db_t *db, json_t *body) { return save(r, db, body, body, NULL); }

static enum MHD_Result do_put(api_req_t *r, db_t *db, json_t *body)
{
    db_server_t stored;
    enum MHD_Result ret;
    if (!load_visible(r, db, &stored, &ret))
        return ret;
    ret = save(r, db, body, body, &stored);
    db_server_free(&stored);
    return ret;
}

static enum MHD_Result do_patch(api_req_t *r, db_t *db, json_t *patch)
{
    db_server_t stored;
    enum MHD_Result ret;
    if (!load_visible(r, db, &stored, &ret))
        return ret;
    json_t *cur = server_to_json(&stored);
    json_t *doc = api_merge_patch(cur, patch);
    json_decref(cur);
    if (!doc) {
        db_server_free(&stored);
        return api_problem(r, 500, "out of memory", NULL);
    }
    ret = save(r, db, doc, patch, &stored);
    json_decref(doc);
    db_server_free(&stored);
    return ret;
}

enum MHD_Result api_servers_create(api_req_t *r) { return api_with_body_tx(r, do_create); }
enum MHD_Result api_servers_put(api_req_t *r) { return api_with_body_tx(r, do_put); }
enum MHD_Result api_servers_patch(api_req_t *r) { return api_with_body_tx(r, do_patch); }

static enum MHD_Result do_delete(api_req_t *r, db_t *db, json_t *unused)
{
    (void)unused;
    const char *dr = api_query(r, "dryRun");
    bool dry = false;
    if (dr) {
        if (strcmp(dr, "true") == 0 || strcmp(dr, "1") == 0)
            dry = true;
        else if (strcmp(dr, "false") != 0 && strcmp(dr, "0") != 0)
            return api_problem_field(r, 400, "dryRun", "dryRun must be true or false");
    }
    db_server_t s;
    enum MHD_Result ret;
    if (!load_visible(r, db, &s, &ret))
        return ret;
    char domain[256];
    snprintf(domain, sizeof domain, "%s", s.domain);
    db_server_free(&s);
    char *deps = NULL;
    int rc = db_server_dependents(db, r->id, &deps);
    if (rc == SQLITE_OK && !dry)
        rc = db_server_delete(db, r->id);
    /* the bootstrap settings' task went with the server: rebuild it from the
     * servers that remain in the settings */
    if (rc == SQLITE_OK && !dry)
        rc = db_bs_settings_sync_task(db, domain);
    if (rc == SQLITE_OK && !dry)
        rc = db_commit(db);
    if (rc != SQLITE_OK) {
        free(deps);
        return api_problem_db(r, rc, "LwM2M server");
    }
    json_t *d = json_loads(deps, 0, NULL);
    free(deps);
    if (!dry)
        LOG_INFO("api", "event=server_deleted id=%lld tasks=%zu templates=%zu", (long long)r->id,
                 json_array_size(json_object_get(d, "tasks")), json_array_size(json_object_get(d, "taskTemplates")));
    json_t *out = json_pack("{s:b, s:o}", "dryRun", dry, "deleted", d ? d : json_object());
    return api_send_json(r, 200, out, NULL);
}

enum MHD_Result api_servers_delete(api_req_t *r)
{
    db_t *db = api_req_db(r);
    if (!db)
        return api_problem(r, 503, "database unavailable", NULL);
    return api_in_tx(r, db, do_delete, NULL);
}
