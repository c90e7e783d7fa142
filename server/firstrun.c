#include "server/firstrun.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/log.h"

static void gen_password(char *out, size_t cap)
{
    static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    size_t n = cap - 1 < 20 ? cap - 1 : 20;
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    out[n] = 0;
}

static void uri(char *out, size_t cap, const char *scheme, const char *host, uint16_t port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "%s://[%s]:%u", scheme, host, port);
    else
        snprintf(out, cap, "%s://%s:%u", scheme, host, port);
}

static int add_server(db_t *db, const char *name, int type, int ssid, const char *u, int sec, const char *psk,
                      int64_t *id)
{
    db_server_t s = {0};
    s.domain = (char *)"/";
    s.name = (char *)name;
    s.type = type;
    s.transport = DB_TRANSPORT_UDP;
    s.ssid = ssid;
    s.uri = (char *)u;
    s.client_hold_off_time = type == DB_SRV_BOOTSTRAP ? 0 : -1;
    s.bootstrap_account_timeout = type == DB_SRV_BOOTSTRAP ? 0 : -1;
    snprintf(s.binding, sizeof s.binding, "U");
    s.lifetime = 300;
    s.store_notifications = false;
    s.security_mode = sec;
    s.psk = (char *)psk;
    s.sms_security_mode = -1;
    int rc = db_server_insert(db, &s);
    *id = s.id;
    return rc;
}

int firstrun_apply(db_t *db, const firstrun_params_t *p, char *gen_pw, size_t gen_pw_cap, int *seeded, char *err,
                   size_t errlen)
{
    *seeded = 0;
    gen_pw[0] = 0;
    int64_t users = 0;
    if (db_user_count(db, &users) != 0) {
        snprintf(err, errlen, "cannot count users");
        return -1;
    }
    char *done = NULL;
    bool first = db_kv_get(db, "first_run_done", &done) != 0;
    free(done);
    if (users > 0 && !first)
        return 0;
    if (db_begin(db) != 0) {
        snprintf(err, errlen, "cannot start a transaction");
        return -1;
    }
    int rc = 0;
    if (users == 0) {
        const char *pw = p->admin_password;
        if (!pw || !*pw) {
            gen_password(gen_pw, gen_pw_cap);
            pw = gen_pw;
        }
        int64_t uid;
        rc = db_user_create(db, "admin", pw, "/", &uid);
    }
    if (rc == 0 && first) {
        char u[300];
        int64_t id_mgmt = 0, id_mgmt_psk = 0, id_bs = 0, id_bs_psk = 0;
        uri(u, sizeof u, "coap", p->public_host, p->coap_port);
        rc = add_server(db, "lwdm management (NoSec)", DB_SRV_MANAGEMENT, 1, u, DB_SEC_NOSEC, NULL, &id_mgmt);
        if (rc == 0) {
            uri(u, sizeof u, "coaps", p->public_host, p->coaps_port);
            rc = add_server(db, "lwdm management (PSK)", DB_SRV_MANAGEMENT, 2, u, DB_SEC_PSK,
                            "${string.secureRandom(16)}", &id_mgmt_psk);
        }
        if (rc == 0) {
            uri(u, sizeof u, "coap", p->public_host, p->bs_coap_port);
            rc = add_server(db, "lwdm bootstrap (NoSec)", DB_SRV_BOOTSTRAP, 0, u, DB_SEC_NOSEC, NULL, &id_bs);
        }
        if (rc == 0) {
            uri(u, sizeof u, "coaps", p->public_host, p->bs_coaps_port);
            rc = add_server(db, "lwdm bootstrap (PSK)", DB_SRV_BOOTSTRAP, 0, u, DB_SEC_PSK,
                            "${string.secureRandom(16)}", &id_bs_psk);
        }
        if (rc == 0) {
            db_bs_settings_t st = {0};
            st.bootstrap_server_id = 0;
            st.management_server_ids = &id_mgmt;
            st.n_management = 1;
            st.accept_unknown = true;
            rc = db_bs_settings_put(db, "/", &st);
            if (rc == 0)
                rc = db_bs_settings_sync_task(db, "/");
        }
        if (rc == 0)
            rc = db_kv_set(db, "first_run_done", "1");
        if (rc == 0)
            *seeded = 1;
    }
    if (rc != 0) {
        db_rollback(db);
        snprintf(err, errlen, "first-run setup failed (sqlite %d)", rc);
        gen_pw[0] = 0;
        *seeded = 0;
        return -1;
    }
    if (db_commit(db) != 0) {
        snprintf(err, errlen, "first-run commit failed");
        return -1;
    }
    return 0;
}
