#include "support/harness.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "server/common/log.h"

static void *run_thread(void *arg)
{
    harness_t *h = arg;
    lwdm_server_run(h->srv);
    return NULL;
}

void harness_start(harness_t *h, const harness_opts_t *o)
{
    harness_opts_t def = {0};
    if (!o)
        o = &def;
    if (!h->dir[0]) {
        snprintf(h->dir, sizeof h->dir, "/tmp/lwdm-integ-XXXXXX");
        if (!mkdtemp(h->dir))
            fail_msg("mkdtemp failed");
        snprintf(h->db_path, sizeof h->db_path, "%s/lwdm.db", h->dir);
    }
    if (o->db_path)
        snprintf(h->db_path, sizeof h->db_path, "%s", o->db_path);
    const char *lvl = getenv("LWDM_TEST_LOG");
    log_set_level(lvl ? (log_level_t)log_level_parse(lvl) : LOG_LVL_WARN);
    lwdm_config_t cfg;
    lwdm_config_defaults(&cfg);
    snprintf(cfg.db_path, sizeof cfg.db_path, "%s", h->db_path);
    cfg.http_port = 0;
    cfg.coap_port = o->keep_coap_ports ? h->coap_port : 0;
    cfg.coaps_port = o->keep_coap_ports ? h->coaps_port : 0;
    cfg.bs_coap_port = o->keep_coap_ports ? h->bs_coap_port : 0;
    cfg.bs_coaps_port = o->keep_coap_ports ? h->bs_coaps_port : 0;
    cfg.http_threads = 2;
    cfg.log_level = log_get_level();
    if (o->bs_timeout_s)
        cfg.bs_timeout_s = o->bs_timeout_s;
    if (o->queue_awake_ms)
        cfg.queue_awake_ms = o->queue_awake_ms;
    snprintf(cfg.public_host, sizeof cfg.public_host, "127.0.0.1");
    snprintf(cfg.admin_password, sizeof cfg.admin_password, "%s", HARNESS_ADMIN_PASSWORD);
    char err[512];
    if (lwdm_server_open(&cfg, &h->srv, err, sizeof err) != 0)
        fail_msg("lwdm_server_open: %s", err);
    h->http_port = lwdm_server_http_port(h->srv);
    h->bs_coap_port = lwdm_server_bs_coap_port(h->srv);
    h->bs_coaps_port = lwdm_server_bs_coaps_port(h->srv);
    h->coap_port = lwdm_server_coap_port(h->srv);
    h->coaps_port = lwdm_server_coaps_port(h->srv);
    if (pthread_create(&h->thread, NULL, run_thread, h) != 0)
        fail_msg("pthread_create");
    h->running = 1;
    json_t *resp = NULL;
    char body[200];
    snprintf(body, sizeof body, "{\"username\":\"admin\",\"password\":\"%s\"}", HARNESS_ADMIN_PASSWORD);
    h->token[0] = 0;
    long st = harness_http(h, "POST", "/api/v1/auth/token", body, &resp);
    if (st != 200 || !resp || !json_is_string(json_object_get(resp, "token")))
        fail_msg("login failed: HTTP %ld", st);
    snprintf(h->token, sizeof h->token, "%s", json_string_value(json_object_get(resp, "token")));
    json_decref(resp);
    uint8_t key[DB_KEY_BYTES];
    if (db_secret_key_load(h->db_path, NULL, key, err, sizeof err) != 0 || db_open(h->db_path, key, &h->db, err, sizeof err) != 0)
        fail_msg("test db: %s", err);
}

void harness_stop(harness_t *h)
{
    if (h->db)
        db_close(&h->db);
    if (h->running) {
        lwdm_server_stop(h->srv);
        pthread_join(h->thread, NULL);
        h->running = 0;
    }
    lwdm_server_close(&h->srv);
}

void harness_cleanup(harness_t *h)
{
    harness_stop(h);
    if (h->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
        int rc = system(cmd);
        (void)rc;
        h->dir[0] = 0;
    }
}

typedef struct {
    char *buf;
    size_t len;
} sink_t;

static size_t on_data(char *p, size_t sz, size_t n, void *ud)
{
    sink_t *s = ud;
    char *nb = realloc(s->buf, s->len + sz * n + 1);
    if (!nb)
        return 0;
    memcpy(nb + s->len, p, sz * n);
    s->len += sz * n;
    nb[s->len] = 0;
    s->buf = nb;
    return sz * n;
}

long harness_http(harness_t *h, const char *method, const char *path, const char *body, json_t **out)
{
    CURL *c = curl_easy_init();
    if (!c)
        fail_msg("curl_easy_init");
    char url[512], auth[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", h->http_port, path);
    struct curl_slist *hdr = NULL;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    if (h->token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        hdr = curl_slist_append(hdr, auth);
    }
    sink_t s = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    if (out)
        *out = s.buf ? json_loads(s.buf, 0, NULL) : NULL;
    free(s.buf);
    return status;
}

long harness_httpf(harness_t *h, const char *method, const char *body, json_t **out, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    return harness_http(h, method, path, body, out);
}

int64_t harness_server_id(harness_t *h, const char *name)
{
    json_t *r = NULL;
    long st = harness_http(h, "GET", "/api/v1/lwm2m-servers?limit=1000", NULL, &r);
    if (st != 200 || !r)
        fail_msg("GET lwm2m-servers: %ld", st);
    json_t *items = json_object_get(r, "items"), *it;
    size_t i;
    int64_t id = 0;
    json_array_foreach(items, i, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, "name")) ?: "", name))
            id = json_integer_value(json_object_get(it, "id"));
    }
    json_decref(r);
    if (!id)
        fail_msg("no server named '%s'", name);
    return id;
}

void harness_bs_settings(harness_t *h, int64_t bs_server_id, const int64_t *mgmt, size_t n, int accept_unknown)
{
    json_t *ids = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ids, json_integer(mgmt[i]));
    json_t *b = json_pack("{s:o, s:o, s:b}", "bootstrapServerId", bs_server_id ? json_integer(bs_server_id) : json_null(),
                          "managementServerIds", ids, "acceptUnknownDevices", accept_unknown);
    char *txt = json_dumps(b, JSON_COMPACT);
    json_t *r = NULL;
    long st = harness_http(h, "PUT", "/api/v1/bootstrap-settings", txt, &r);
    if (st != 200) {
        char *rt = r ? json_dumps(r, 0) : NULL;
        fail_msg("PUT bootstrap-settings: %ld %s", st, rt ? rt : "");
    }
    free(txt);
    json_decref(b);
    json_decref(r);
}

json_t *harness_device(harness_t *h, const char *endpoint)
{
    json_t *r = NULL;
    long st = harness_httpf(h, "GET", NULL, &r, "/api/v1/devices?q=%s&limit=1000", endpoint);
    if (st != 200 || !r)
        fail_msg("GET devices: %ld", st);
    json_t *items = json_object_get(r, "items"), *it, *found = NULL;
    size_t i;
    json_array_foreach(items, i, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, "endpoint")) ?: "", endpoint))
            found = it;
    }
    if (found)
        json_incref(found);
    json_decref(r);
    return found;
}
