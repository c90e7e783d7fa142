/* tests for server/config.c: defaults, flags, environment, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "server/config.h"

static int parse(lwdm_config_t *c, char *err, int argc, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, argc);
    for (int i = 0; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    lwdm_config_defaults(c);
    return lwdm_config_parse(c, argc, argv, err, 256);
}

static void test_defaults(void **state)
{
    (void)state;
    lwdm_config_t c;
    char err[256];
    unsetenv("LWDM_DB");
    unsetenv("LWDM_HTTP");
    assert_int_equal(parse(&c, err, 0), 0);
    assert_string_equal(c.db_path, "./lwdm.db");
    assert_string_equal(c.http_addr, "127.0.0.1");
    assert_int_equal(c.http_port, 8080);
    assert_int_equal(c.coap_port, 5683);
    assert_int_equal(c.coaps_port, 5684);
    assert_int_equal(c.bs_coap_port, 5693);
    assert_int_equal(c.bs_coaps_port, 5694);
    assert_int_equal(c.accept_unknown, -1);
    assert_int_equal(c.tcp, 1); /* CoAP over TCP/TLS on the same ports */
    assert_int_equal(c.own_udp, 1); /* lwdm's own UDP endpoint on the NoSec management port */
    assert_string_equal(c.public_host, "127.0.0.1");
}

static void test_coap_udp_flag(void **state)
{
    (void)state;
    lwdm_config_t c;
    char err[256];
    unsetenv("LWDM_COAP_UDP");
    static const struct { const char *v; int rc, own; } rows[] = {
        {"libcoap", 0, 0}, {"lwdm", 0, 1}, {"LIBCOAP", 0, 0}, {"own", -1, 1}, {"", -1, 1}, {"libcoap ", -1, 1},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int rc = parse(&c, err, 2, "--coap-udp", rows[i].v);
        assert_int_equal(rc, rows[i].rc);
        if (rc == 0)
            assert_int_equal(c.own_udp, rows[i].own);
        else
            assert_non_null(strstr(err, "--coap-udp"));
    }
    setenv("LWDM_COAP_UDP", "libcoap", 1);
    assert_int_equal(parse(&c, err, 0), 0);
    assert_int_equal(c.own_udp, 0);
    assert_int_equal(parse(&c, err, 2, "--coap-udp", "lwdm"), 0); /* the flag wins */
    assert_int_equal(c.own_udp, 1);
    setenv("LWDM_COAP_UDP", "both", 1);
    assert_int_equal(parse(&c, err, 0), -1);
    assert_non_null(strstr(err, "LWDM_COAP_UDP"));
    unsetenv("LWDM_COAP_UDP");
    assert_non_null(strstr(lwdm_config_usage(), "--coap-udp lwdm|libcoap"));
}

static void test_tcp_flag(void **state)
{
    (void)state;
    lwdm_config_t c;
    char err[256];
    unsetenv("LWDM_TCP");
    assert_int_equal(parse(&c, err, 2, "--tcp", "off"), 0);
    assert_int_equal(c.tcp, 0);
    assert_int_equal(parse(&c, err, 1, "--tcp=on"), 0);
    assert_int_equal(c.tcp, 1);
    setenv("LWDM_TCP", "false", 1);
    assert_int_equal(parse(&c, err, 0), 0);
    assert_int_equal(c.tcp, 0);
    assert_int_equal(parse(&c, err, 2, "--tcp", "yes"), 0); /* the flag wins */
    assert_int_equal(c.tcp, 1);
    setenv("LWDM_TCP", "sometimes", 1);
    assert_int_equal(parse(&c, err, 0), -1);
    assert_non_null(strstr(err, "LWDM_TCP"));
    unsetenv("LWDM_TCP");
    assert_int_equal(parse(&c, err, 2, "--tcp", "2"), -1);
    assert_non_null(strstr(err, "--tcp"));
    assert_int_equal(parse(&c, err, 1, "--tcp"), -1);
    assert_non_null(strstr(lwdm_config_usage(), "--tcp on|off"));
    assert_non_null(strstr(lwdm_config_usage(), "LWDM_TCP"));
}

static void test_flags_and_env(void **state)
{
    (void)state;
    lwdm_config_t c;
    char err[256];
    setenv("LWDM_DB", "/tmp/env.db", 1);
    setenv("LWDM_BS_COAP", "7000", 1);
    assert_int_equal(parse(&c, err, 5, "--db", "/tmp/flag.db", "--http", "0.0.0.0:9090", "--bs-coaps=off"), 0);
    assert_string_equal(c.db_path, "/tmp/flag.db"); /* flag wins */
    assert_int_equal(c.bs_coap_port, 7000);         /* env applies */
    assert_string_equal(c.http_addr, "0.0.0.0");
    assert_int_equal(c.http_port, 9090);
    assert_int_equal(c.bs_coaps_port, LWDM_PORT_OFF);
    unsetenv("LWDM_DB");
    unsetenv("LWDM_BS_COAP");
    assert_int_equal(parse(&c, err, 4, "--coap-addr", "0.0.0.0", "--accept-unknown", "off"), 0);
    assert_string_equal(c.public_host, "127.0.0.1");
    assert_int_equal(c.accept_unknown, 0);
    assert_int_equal(parse(&c, err, 2, "--http", "[::1]:8081"), 0);
    assert_string_equal(c.http_addr, "::1");
    assert_int_equal(c.http_port, 8081);
}

static void test_errors(void **state)
{
    (void)state;
    lwdm_config_t c;
    char err[256];
    static const char *bad[][2] = {
        {"--coap", "70000"}, {"--coap", "abc"}, {"--http", "host:"}, {"--log-level", "loud"},
        {"--log-format", "xml"}, {"--accept-unknown", "maybe"}, {"--nope", "1"}, {"--db", ""},
        {"--http-threads", "0"}, {"--bs-timeout", "-1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal(parse(&c, err, 2, bad[i][0], bad[i][1]), -1);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(parse(&c, err, 1, "--coap"), -1);
    assert_non_null(strstr(err, "needs a value"));
    assert_int_equal(parse(&c, err, 1, "stray"), -1);
    setenv("LWDM_COAPS", "x", 1);
    assert_int_equal(parse(&c, err, 0), -1);
    assert_non_null(strstr(err, "LWDM_COAPS"));
    unsetenv("LWDM_COAPS");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_flags_and_env),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tcp_flag),
        cmocka_unit_test(test_coap_udp_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
