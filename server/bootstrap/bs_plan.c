#include "server/bootstrap/bs_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/lwm2m/codec.h"

void bs_account_clear(bs_account_t *a)
{
    if (a->secret)
        memset(a->secret, 0, a->secret_len);
    free(a->identity);
    free(a->secret);
    memset(a, 0, sizeof *a);
}

bool bs_cf_is_lwm2m(int cf)
{
    switch (cf) {
    case LWM2M_CF_TEXT: case LWM2M_CF_LINK: case LWM2M_CF_OPAQUE: case LWM2M_CF_CBOR:
    case LWM2M_CF_SENML_JSON: case LWM2M_CF_SENML_CBOR: case LWM2M_CF_TLV: case LWM2M_CF_OMA_JSON:
    case LWM2M_CF_LWM2M_CBOR: case LWM2M_CF_OLD_TLV: case LWM2M_CF_OLD_JSON:
        return true;
    default:
        return false;
    }
}

static int security_mode_value(int m)
{
    switch (m) {
    case DB_SEC_PSK: return 0;
    case DB_SEC_CERT: return 2;
    case DB_SEC_CERT_EST: return 4;
    default: return 3; /* NoSec */
    }
}

static int sms_mode_value(int v) { return v < 0 ? 3 : v; }

/* Binding resource (/1/x/7). 1.0 strings are written as configured; a TCP
 * transport is announced as T (LwM2M 1.1 Core §6.2.1.1 binding values). */
static void binding_value(const db_server_t *s, char out[8])
{
    if (s->transport == DB_TRANSPORT_TCP)
        snprintf(out, 8, "T%s", strchr(s->binding, 'Q') ? "Q" : "");
    else
        snprintf(out, 8, "%s", s->binding[0] ? s->binding : "U");
}

static int add_security(lwm2m_records_t *rs, const bs_account_t *a, uint16_t iid)
{
    const db_server_t *s = a->srv;
    bool bs = s->type == DB_SRV_BOOTSTRAP;
#define P(r) lwm2m_path_make(3, 0, iid, (r), 0)
    lwm2m_path_t p;
    int rc = 0;
    p = P(0); rc |= lwm2m_records_add_string(rs, &p, s->uri ? s->uri : "");
    p = P(1); rc |= lwm2m_records_add_bool(rs, &p, bs);
    p = P(2); rc |= lwm2m_records_add_int(rs, &p, security_mode_value(s->security_mode));
    p = P(3); rc |= lwm2m_records_add_opaque(rs, &p, a->identity, a->identity_len);
    p = P(4); rc |= lwm2m_records_add_opaque(rs, &p, s->server_cert, s->server_cert ? s->server_cert_len : 0);
    p = P(5); rc |= lwm2m_records_add_opaque(rs, &p, a->secret, a->secret_len);
    if (s->sms_enabled && s->sms_number) {
        p = P(6); rc |= lwm2m_records_add_int(rs, &p, sms_mode_value(s->sms_security_mode));
        p = P(9); rc |= lwm2m_records_add_string(rs, &p, s->sms_number);
    }
    if (!bs && s->ssid > 0) {
        p = P(10); rc |= lwm2m_records_add_int(rs, &p, s->ssid);
    }
    if (s->client_hold_off_time >= 0) {
        p = P(11); rc |= lwm2m_records_add_int(rs, &p, s->client_hold_off_time);
    }
    if (bs && s->bootstrap_account_timeout >= 0) {
        p = P(12); rc |= lwm2m_records_add_int(rs, &p, s->bootstrap_account_timeout);
    }
#undef P
    return rc ? LWM2M_ERR_INTERNAL : 0;
}

static int add_server(lwm2m_records_t *rs, const db_server_t *s, uint16_t iid)
{
    char binding[8];
    binding_value(s, binding);
#define P(r) lwm2m_path_make(3, 1, iid, (r), 0)
    lwm2m_path_t p;
    int rc = 0;
    p = P(0); rc |= lwm2m_records_add_int(rs, &p, s->ssid);
    p = P(1); rc |= lwm2m_records_add_int(rs, &p, s->lifetime > 0 ? s->lifetime : 86400);
    p = P(6); rc |= lwm2m_records_add_bool(rs, &p, s->store_notifications);
    p = P(7); rc |= lwm2m_records_add_string(rs, &p, binding);
#undef P
    return rc ? LWM2M_ERR_INTERNAL : 0;
}

int bs_plan_account(const bs_account_t *a, uint16_t sec_iid, int srv_iid, lwm2m_records_t *out)
{
    lwm2m_records_t tmp;
    lwm2m_records_init(&tmp);
    int rc = add_security(&tmp, a, sec_iid);
    if (rc == 0 && a->srv->type != DB_SRV_BOOTSTRAP && srv_iid >= 0)
        rc = add_server(&tmp, a->srv, (uint16_t)srv_iid);
    for (size_t i = 0; i < tmp.n && rc == 0; i++)
        rc = lwm2m_records_add(out, &tmp.recs[i]);
    lwm2m_records_clear(&tmp);
    return rc;
}

int bs_plan_pack(const lwm2m_records_t *recs, int cf, uint8_t **out, size_t *outlen)
{
    if (cf != LWM2M_CF_SENML_CBOR && cf != LWM2M_CF_SENML_JSON)
        return LWM2M_ERR_NOT_ACCEPTABLE;
    lwm2m_path_t root = lwm2m_path_make(0, 0, 0, 0, 0);
    return lwm2m_encode(cf, &root, recs, out, outlen);
}
