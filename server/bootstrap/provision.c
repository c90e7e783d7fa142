/* Handing a device over to another server (lwm2m-servers "configure device
 * on target server" + "provision credentials to the server"): during
 * bootstrap, lwdm creates the device — with the per-device PSK it generated
 * for that server — on the target through the target's REST API, so the
 * device can register there right after Bootstrap-Finish.
 *
 * The target is an lwdm (or anything with the same API): `apiUri` is its
 * API base, e.g. http://10.0.0.2:8080/api/v1.
 *
 *   login (POST {apiUri}/auth/token) -> create (POST {apiUri}/devices)
 *     -> 409 (exists): find (GET {apiUri}/devices?q=ep) -> PATCH its credentials
 *
 * Asynchronous on the loop's curl-multi (http_client.h); the result is logged
 * and published as a `provisioning` event. Each bootstrap provisions again
 * (idempotent), so a failure heals on the next bootstrap. */
#include "server/bootstrap/provision.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/events.h"
#include "server/common/log.h"

typedef enum { P_LOGIN = 0, P_CREATE, P_FIND, P_PATCH } pstep_t;

typedef struct prov {
    struct prov *next;           /* g_provs: calls in flight */
    uint64_t http_id;
    http_client_t *http;
    struct events *events;
    bs_provision_cb cb;
    void *cb_ud;
    pstep_t step;
    int64_t device_id;
    char *endpoint, *api, *user, *pass, *token, *creds_json, *server_name;
    char auth[600];
} prov_t;

/* Calls in flight (loop thread only), so that a stop frees them. */
static prov_t *g_provs;

static void prov_free(prov_t *p)
{
    for (prov_t **pp = &g_provs; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    free(p->endpoint);
    free(p->api);
    free(p->user);
    if (p->pass)
        memset(p->pass, 0, strlen(p->pass));
    free(p->pass);
    free(p->token);
    if (p->creds_json)
        memset(p->creds_json, 0, strlen(p->creds_json));
    free(p->creds_json);
    free(p->server_name);
    free(p);
}

static void finish(prov_t *p, bool ok, const char *why)
{
    if (ok)
        LOGI("bootstrap", "ep=%s event=provisioned server=\"%s\" api=%s", p->endpoint, p->server_name, p->api);
    else
        LOGW("bootstrap", "ep=%s event=provisioning-failed server=\"%s\" api=%s reason=\"%s\"", p->endpoint,
             p->server_name, p->api, why);
    if (p->events)
        events_publish(p->events, "provisioning", p->device_id, p->endpoint, "/",
                       json_pack("{s:s,s:s,s:b,s:s}", "server", p->server_name, "apiUri", p->api, "ok", ok, "detail",
                                 ok ? "device and credentials created on the target" : why));
    bs_provision_cb cb = p->cb;
    void *ud = p->cb_ud;
    int64_t dev = p->device_id;
    prov_free(p);
    if (cb)
        cb(ud, dev, ok);
}

static void on_http(void *ud, int status, const uint8_t *body, size_t len, const char *error);

static int send_step(prov_t *p, const char *method, const char *path, const char *bodytext)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", p->api, path);
    http_header_t h = {"Authorization", p->auth};
    http_request_t rq = {.method = method,
                         .url = url,
                         .body = bodytext,
                         .content_type = bodytext ? "application/json" : NULL,
                         .headers = p->token ? &h : NULL,
                         .nheaders = p->token ? 1 : 0,
                         .timeout_s = 15};
    return http_client_start(p->http, &rq, on_http, p, &p->http_id);
}

static void on_http(void *ud, int status, const uint8_t *body, size_t len, const char *error)
{
    prov_t *p = ud;
    p->http_id = 0;
    char why[200];
    if (!status) {
        snprintf(why, sizeof why, "%s", error ? error : "no answer");
        finish(p, false, why);
        return;
    }
    json_t *doc = body && len ? json_loadb((const char *)body, len, 0, NULL) : NULL;
    int rc = -1;
    switch (p->step) {
    case P_LOGIN: {
        const char *tok = json_string_value(json_object_get(doc, "token"));
        if (status != 200 || !tok) {
            snprintf(why, sizeof why, "login refused (HTTP %d)", status);
            break;
        }
        p->token = strdup(tok);
        snprintf(p->auth, sizeof p->auth, "Bearer %s", tok);
        p->step = P_CREATE;
        char *b = NULL;
        json_t *dev = json_pack("{s:s}", "endpoint", p->endpoint);
        if (p->creds_json)
            json_object_set_new(dev, "managementCredentials", json_loads(p->creds_json, 0, NULL));
        b = json_dumps(dev, JSON_COMPACT);
        json_decref(dev);
        rc = b ? send_step(p, "POST", "/devices", b) : -1;
        free(b);
        snprintf(why, sizeof why, "could not send the create request");
        break;
    }
    case P_CREATE:
        if (status == 201) {
            json_decref(doc);
            finish(p, true, NULL);
            return;
        }
        if (status != 409) {
            snprintf(why, sizeof why, "create refused (HTTP %d)", status);
            break;
        }
        {
            char path[400];
            char *esc = curl_easy_escape(NULL, p->endpoint, 0); /* the handle is unused since 7.82 */
            snprintf(path, sizeof path, "/devices?q=%s&limit=100", esc ? esc : p->endpoint);
            curl_free(esc);
            p->step = P_FIND;
            rc = send_step(p, "GET", path, NULL);
            snprintf(why, sizeof why, "could not send the lookup request");
        }
        break;
    case P_FIND: {
        json_t *items = json_object_get(doc, "items");
        size_t i;
        json_t *it;
        int64_t id = 0;
        json_array_foreach(items, i, it)
        {
            const char *ep = json_string_value(json_object_get(it, "endpoint"));
            if (ep && !strcmp(ep, p->endpoint))
                id = json_integer_value(json_object_get(it, "id"));
        }
        if (status != 200 || id <= 0) {
            snprintf(why, sizeof why, "the device exists on the target but could not be found (HTTP %d)", status);
            break;
        }
        if (!p->creds_json) {
            json_decref(doc);
            finish(p, true, NULL);
            return;
        }
        char path[64];
        snprintf(path, sizeof path, "/devices/%lld", (long long)id);
        char *b = NULL;
        json_t *patch = json_pack("{s:o}", "managementCredentials", json_loads(p->creds_json, 0, NULL));
        b = json_dumps(patch, JSON_COMPACT);
        json_decref(patch);
        p->step = P_PATCH;
        rc = b ? send_step(p, "PATCH", path, b) : -1;
        free(b);
        snprintf(why, sizeof why, "could not send the update request");
        break;
    }
    case P_PATCH:
        if (status == 200) {
            json_decref(doc);
            finish(p, true, NULL);
            return;
        }
        snprintf(why, sizeof why, "credentials update refused (HTTP %d)", status);
        break;
    }
    json_decref(doc);
    if (rc != 0)
        finish(p, false, why);
}

int bs_provision_start(http_client_t *http, struct events *events, const db_server_t *srv, int64_t device_id,
                       const char *endpoint, const uint8_t *identity, size_t idlen, const uint8_t *key, size_t keylen,
                       bs_provision_cb cb, void *ud)
{
    if (!srv->configure_device_on_target || !srv->provision_credentials || !srv->prov_api_uri || !http)
        return 0;
    prov_t *p = calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->http = http;
    p->events = events;
    p->next = g_provs;
    g_provs = p;
    p->device_id = device_id;
    p->endpoint = strdup(endpoint);
    p->api = strdup(srv->prov_api_uri);
    size_t al = p->api ? strlen(p->api) : 0;
    while (al && p->api[al - 1] == '/')
        p->api[--al] = 0;
    p->user = strdup(srv->prov_user ? srv->prov_user : "");
    p->pass = strdup(srv->prov_password ? srv->prov_password : "");
    p->server_name = strdup(srv->name ? srv->name : "");
    if (identity && key && idlen && keylen) {
        char *hex = malloc(keylen * 2 + 1);
        char *id = malloc(idlen + 1);
        if (hex && id) {
            for (size_t i = 0; i < keylen; i++)
                snprintf(hex + 2 * i, 3, "%02x", key[i]);
            memcpy(id, identity, idlen);
            id[idlen] = 0;
            json_t *c = json_pack("{s:s,s:s,s:s}", "securityMode", "psk", "pskIdentity", id, "psk", hex);
            p->creds_json = json_dumps(c, JSON_COMPACT);
            json_decref(c);
            memset(hex, 0, keylen * 2);
        }
        free(hex);
        free(id);
    }
    if (!p->endpoint || !p->api || !p->user || !p->pass || !p->server_name) {
        prov_free(p);
        return -1;
    }
    json_t *login = json_pack("{s:s,s:s}", "username", p->user, "password", p->pass);
    char *b = json_dumps(login, JSON_COMPACT);
    json_decref(login);
    int rc = b ? send_step(p, "POST", "/auth/token", b) : -1;
    if (b)
        memset(b, 0, strlen(b));
    free(b);
    if (rc != 0) {
        finish(p, false, "could not start the HTTP call");
        return -1;
    }
    p->cb = cb; /* from here on the outcome is reported */
    p->cb_ud = ud;
    return 1;
}

void bs_provision_cancel_all(http_client_t *http)
{
    for (prov_t *p = g_provs, *next; p; p = next) {
        next = p->next;
        if (p->http != http)
            continue;
        if (p->http_id)
            http_client_cancel(http, p->http_id);
        LOGW("bootstrap", "ep=%s event=provisioning-cancelled server=\"%s\" reason=\"server stopping\"", p->endpoint,
             p->server_name);
        prov_free(p);
    }
}
