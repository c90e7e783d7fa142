/* api: pure helpers (URI normalisation, merge patch, times, validation
 * errors) and the server lifecycle (api_start on port 0, a raw HTTP request,
 * api_stop closing the worker connections). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api_int.h"

typedef struct {
    const char *in;
    int mode, type, transport;
    const char *out; /* NULL = refused */
} uri_case_t;

static void test_uri(void **state)
{
    (void)state;
    static const uri_case_t cases[] = {
        {"h.example", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coap://h.example:5683"},
        {"h.example", DB_SEC_PSK, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coaps://h.example:5684"},
        {"h.example", DB_SEC_NOSEC, DB_SRV_BOOTSTRAP, DB_TRANSPORT_UDP, "coap://h.example:5693"},
        {"h.example", DB_SEC_CERT, DB_SRV_BOOTSTRAP, DB_TRANSPORT_UDP, "coaps://h.example:5694"},
        {"h.example", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_TCP, "coap+tcp://h.example:5683"},
        {"h.example", DB_SEC_CERT_EST, DB_SRV_MANAGEMENT, DB_TRANSPORT_TCP, "coaps+tcp://h.example:5684"},
        {"h.example:1", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coap://h.example:1"},
        {"h.example:65535", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coap://h.example:65535"},
        {"CoAP://h.example/", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coap://h.example:5683"},
        {"::1", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coap://[::1]:5683"},
        {"[fe80::1]:9", DB_SEC_PSK, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, "coaps://[fe80::1]:9"},
        {"192.0.2.1", DB_SEC_PSK, DB_SRV_BOOTSTRAP, DB_TRANSPORT_TCP, "coaps+tcp://192.0.2.1:5694"},
        {"", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"coap://", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"://h", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"coaps://h", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"coap://h", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_TCP, NULL},
        {"http://h", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h:0", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h:65536", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h:123456", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h:", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h/x", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h#f", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"u@h", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"h x", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"[::1", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"[::1]:", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"[zz::1]", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"[]", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
        {"1:2:3", DB_SEC_NOSEC, DB_SRV_MANAGEMENT, DB_TRANSPORT_UDP, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char msg[200] = "";
        char *out = api_server_uri_normalise(cases[i].in, cases[i].mode, cases[i].type, cases[i].transport, msg,
                                             sizeof msg);
        if (cases[i].out) {
            if (!out)
                fail_msg("case %zu '%s': refused: %s", i, cases[i].in, msg);
            assert_string_equal(out, cases[i].out);
        } else {
            if (out)
                fail_msg("case %zu '%s': accepted as %s", i, cases[i].in, out);
            assert_true(msg[0] != 0);
        }
        free(out);
    }
}

static void check_patch(const char *target, const char *patch, const char *expect)
{
    json_t *t = json_loads(target, JSON_DECODE_ANY, NULL), *p = json_loads(patch, JSON_DECODE_ANY, NULL);
    json_t *e = json_loads(expect, JSON_DECODE_ANY, NULL);
    assert_non_null(t);
    assert_non_null(p);
    assert_non_null(e);
    json_t *r = api_merge_patch(t, p);
    if (!json_equal(r, e)) {
        char *got = json_dumps(r, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fail_msg("patch %s onto %s: got %s, want %s", patch, target, got, expect);
    }
    json_decref(t);
    json_decref(p);
    json_decref(e);
    json_decref(r);
}

/* The examples of RFC 7396, appendix A. */
static void test_merge_patch(void **state)
{
    (void)state;
    check_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
    check_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
    check_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
    check_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
    check_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
    check_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}");
    check_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
    check_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
    check_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
    check_patch("{\"a\":\"foo\"}", "null", "null");
    check_patch("{\"a\":\"foo\"}", "\"bar\"", "\"bar\"");
    check_patch("{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}");
    check_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
    check_patch("{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

static void test_time(void **state)
{
    (void)state;
    json_t *t = api_json_time(0, true);
    assert_true(json_is_null(t));
    json_decref(t);
    t = api_json_time(0, false);
    assert_string_equal(json_string_value(t), "1970-01-01T00:00:00.000Z");
    json_decref(t);
    t = api_json_time(1795600000123LL, false);
    assert_string_equal(json_string_value(t), "2026-11-25T09:46:40.123Z");
    json_decref(t);
}

static void test_verr_status(void **state)
{
    (void)state;
    api_verr_t v;
    api_verr_init(&v);
    assert_false(api_verr_any(&v));
    api_verr_add(&v, 409, "name", "taken");
    assert_int_equal(v.status, 409);
    api_verr_add(&v, 422, "ssid", "range");
    assert_int_equal(v.status, 422);
    api_verr_add(&v, 400, "x", "type");
    api_verr_add(&v, 422, "y", "range");
    assert_int_equal(v.status, 400);
    assert_int_equal(json_array_size(v.errors), 4);
    api_verr_free(&v);
    assert_int_equal(api_utf8_len("z\xc5\xbc\xc3\xb3\xc5\x82w"), 5);
    assert_true(api_has_ctl("a\tb"));
    assert_false(api_has_ctl("a b"));
}

/* ------------------------------------------------------------ lifecycle */
static char g_dir[64];

static int http_get(uint16_t port, const char *path, char *resp, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, resp + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    resp[got] = 0;
    close(fd);
    return 0;
}

static void test_lifecycle(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/lwdm-apitest-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/t.db", g_dir);
    uint8_t key[DB_KEY_BYTES] = {3};
    db_t *db = NULL;
    assert_int_equal(db_open(path, key, &db, err, sizeof err), 0);
    int applied;
    assert_int_equal(db_migrate(db, &applied, err, sizeof err), 0);
    db_close(&db);

    api_config_t cfg = {.db_path = path, .secret_key = key, .bind_addr = "127.0.0.1", .port = 0, .threads = 2,
                        .default_domain = "/"};
    api_t *api = NULL;
    assert_int_equal(api_start(&cfg, &api, err, sizeof err), 0);
    uint16_t port = api_port(api);
    assert_true(port != 0);
    char resp[4096];
    for (int i = 0; i < 4; i++) { /* several connections: several workers open a db */
        assert_int_equal(http_get(port, "/healthz", resp, sizeof resp), 0);
        assert_non_null(strstr(resp, "200 OK"));
        assert_non_null(strstr(resp, "\"db\":\"ok\""));
    }
    assert_int_equal(http_get(port, "/api/v1/devices", resp, sizeof resp), 0);
    assert_non_null(strstr(resp, "401"));
    assert_non_null(strstr(resp, "WWW-Authenticate: Bearer"));
    api_stop(&api);
    assert_null(api);

    /* a taken port is reported */
    api_t *a1 = NULL, *a2 = NULL;
    assert_int_equal(api_start(&cfg, &a1, err, sizeof err), 0);
    cfg.port = api_port(a1);
    assert_int_equal(api_start(&cfg, &a2, err, sizeof err), -1);
    assert_null(a2);
    assert_true(err[0] != 0);
    api_stop(&a1);

    static const char *const sfx[] = {"/t.db", "/t.db-wal", "/t.db-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s%s", g_dir, sfx[i]);
        unlink(path);
    }
    rmdir(g_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_merge_patch),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_verr_status),
        cmocka_unit_test(test_lifecycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
