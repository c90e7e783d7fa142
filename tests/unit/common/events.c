/* tests for server/common/events.c: seq numbering and event text, ring
 * overflow, filters, paging, waiting (timeout, wake-up, a publisher in
 * another thread), concurrent publishers with a reader following, the
 * publish-after-commit batch, and event data built as JSON text
 * (events_data_t: string escaping and invalid UTF-8, integers, key order, the
 * splice into the event's text, buffer growth, dropped and cleared data). */
#include <setjmp.h>
#include <stdarg.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <cmocka.h>

#include "server/common/events.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads everything after `after` (at most 64) into items; returns n. */
static int read_all(events_t *ev, uint64_t after, const events_filter_t *f, events_item_t *items, uint64_t *next,
                    bool *missed)
{
    int n = events_read(ev, after, f, items, 64, next, missed);
    assert_true(n >= 0);
    return n;
}

static void test_seq_and_text(void **state)
{
    (void)state;
    events_t *ev = events_new(0);
    assert_non_null(ev);
    assert_int_equal(events_last_seq(ev), 0);
    assert_int_equal(events_publish(ev, "bootstrap", 7, "sim-000001", "/acme/", json_pack("{s:s}", "status", "started")), 1);
    assert_int_equal(events_publish(ev, "registration", 0, NULL, NULL, NULL), 2);
    assert_int_equal(events_publish(ev, "update", 8, "ep\"q", "/", json_pack("{s:[i,i]}", "a", 1, 2)), 3);
    assert_int_equal(events_last_seq(ev), 3);
    /* refused: no type, too long a type, no bus; data is taken anyway (ASan) */
    assert_int_equal(events_publish(ev, NULL, 1, NULL, NULL, json_object()), 0);
    assert_int_equal(events_publish(ev, "", 1, NULL, NULL, json_object()), 0);
    assert_int_equal(events_publish(ev, "a-type-name-that-is-far-too-long-for-the-bus", 1, NULL, NULL, json_object()), 0);
    assert_int_equal(events_publish(NULL, "bootstrap", 1, NULL, NULL, json_object()), 0);
    assert_int_equal(events_last_seq(ev), 3);

    events_item_t it[64];
    uint64_t next = 99;
    bool missed = true;
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_int_equal(n, 3);
    assert_int_equal(next, 3);
    assert_false(missed);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(it[i].seq, (uint64_t)i + 1);
        assert_int_equal(strlen(it[i].json), it[i].json_len);
        assert_null(strchr(it[i].json, '\n'));
    }
    assert_string_equal(it[0].type, "bootstrap");
    /* the text: seq first, then type, time, deviceId, endpoint, domain, data */
    assert_true(strncmp(it[0].json, "{\"seq\":1,\"type\":\"bootstrap\",\"time\":\"", 36) == 0);
    json_error_t je;
    json_t *o = json_loads(it[0].json, 0, &je);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "deviceId")), 7);
    assert_string_equal(json_string_value(json_object_get(o, "endpoint")), "sim-000001");
    assert_string_equal(json_string_value(json_object_get(o, "domain")), "/acme/");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data"), "status")), "started");
    const char *t = json_string_value(json_object_get(o, "time"));
    assert_int_equal(strlen(t), 24); /* 2026-11-22T10:00:00.000Z */
    assert_int_equal(t[23], 'Z');
    json_decref(o);
    o = json_loads(it[1].json, 0, &je);
    assert_non_null(o);
    assert_true(json_is_null(json_object_get(o, "deviceId")));
    assert_true(json_is_null(json_object_get(o, "endpoint")));
    assert_string_equal(json_string_value(json_object_get(o, "domain")), "/");
    assert_true(json_is_object(json_object_get(o, "data")));
    assert_int_equal(json_object_size(json_object_get(o, "data")), 0);
    json_decref(o);
    o = json_loads(it[2].json, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "endpoint")), "ep\"q");
    json_decref(o);
    events_items_clear(it, (size_t)n);

    /* nothing after the newest */
    n = read_all(ev, 3, NULL, it, &next, &missed);
    assert_int_equal(n, 0);
    assert_int_equal(next, 3);
    assert_false(missed);
    events_free(&ev);
    assert_null(ev);
    events_free(&ev);
}

static void test_ring_overflow(void **state)
{
    (void)state;
    events_t *ev = events_new(8);
    for (int i = 1; i <= 20; i++)
        assert_int_equal(events_publish(ev, "notification", i, NULL, "/", json_pack("{s:i}", "i", i)), (uint64_t)i);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    /* too old: the oldest held (13) and the news that some are gone */
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_true(missed);
    assert_int_equal(n, 8);
    assert_int_equal(it[0].seq, 13);
    assert_int_equal(it[7].seq, 20);
    assert_int_equal(next, 20);
    events_items_clear(it, (size_t)n);
    n = read_all(ev, 11, NULL, it, &next, &missed);
    assert_true(missed);
    assert_int_equal(it[0].seq, 13);
    events_items_clear(it, (size_t)n);
    /* exactly the oldest-1: nothing lost */
    n = read_all(ev, 12, NULL, it, &next, &missed);
    assert_false(missed);
    assert_int_equal(n, 8);
    events_items_clear(it, (size_t)n);
    n = read_all(ev, 15, NULL, it, &next, &missed);
    assert_false(missed);
    assert_int_equal(n, 5);
    assert_int_equal(it[0].seq, 16);
    events_items_clear(it, (size_t)n);
    /* a seq from an earlier run (beyond the newest): read from the oldest */
    n = read_all(ev, 5000, NULL, it, &next, &missed);
    assert_true(missed);
    assert_int_equal(n, 8);
    assert_int_equal(it[0].seq, 13);
    assert_int_equal(next, 20);
    events_items_clear(it, (size_t)n);
    events_free(&ev);
}

static void test_filters_and_paging(void **state)
{
    (void)state;
    events_t *ev = events_new(100);
    /* seq: 1 bs dev1 /, 2 reg dev2 /acme/, 3 step dev1 /, 4 reg dev3 /acme/plant1/, 5 none, 6 reg dev1 /acme2/ */
    events_publish(ev, "bootstrap", 1, "d1", "/", NULL);
    events_publish(ev, "registration", 2, "d2", "/acme/", NULL);
    events_publish(ev, "bootstrap-step", 1, "d1", "/", NULL);
    events_publish(ev, "registration", 3, "d3", "/acme/plant1/", NULL);
    events_publish(ev, "expiry", 0, NULL, "/acme/", NULL);
    events_publish(ev, "registration", 1, "d1", "/acme2/", NULL);
    events_item_t it[64];
    uint64_t next;
    bool missed;

    int64_t d1[] = {1};
    events_filter_t f = {.devices = d1, .ndevices = 1};
    int n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 3);
    assert_int_equal(it[0].seq, 1);
    assert_int_equal(it[1].seq, 3);
    assert_int_equal(it[2].seq, 6);
    assert_int_equal(next, 6);
    events_items_clear(it, (size_t)n);

    int64_t d23[] = {3, 2};
    f = (events_filter_t){.devices = d23, .ndevices = 2};
    n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 2);
    assert_int_equal(it[0].seq, 2);
    assert_int_equal(it[1].seq, 4);
    assert_int_equal(next, 6); /* examined to the newest though nothing matched after 4 */
    events_items_clear(it, (size_t)n);

    const char *types[] = {"registration", "expiry"};
    f = (events_filter_t){.types = types, .ntypes = 2};
    n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 4);
    assert_string_equal(it[0].type, "registration");
    assert_string_equal(it[2].type, "expiry");
    events_items_clear(it, (size_t)n);

    /* domain prefix: /acme/ sees /acme/ and /acme/plant1/, not /acme2/ nor / */
    f = (events_filter_t){.domain = "/acme/"};
    n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 3);
    assert_int_equal(it[0].seq, 2);
    assert_int_equal(it[1].seq, 4);
    assert_int_equal(it[2].seq, 5);
    events_items_clear(it, (size_t)n);

    /* all three at once */
    f = (events_filter_t){.devices = d1, .ndevices = 1, .types = types, .ntypes = 1, .domain = "/acme"};
    n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 1);
    assert_int_equal(it[0].seq, 6);
    events_items_clear(it, (size_t)n);

    /* paging: max reached -> next is the last copied, the rest follows */
    n = events_read(ev, 0, NULL, it, 4, &next, &missed);
    assert_int_equal(n, 4);
    assert_int_equal(next, 4);
    events_items_clear(it, (size_t)n);
    n = events_read(ev, next, NULL, it, 4, &next, &missed);
    assert_int_equal(n, 2);
    assert_int_equal(it[0].seq, 5);
    assert_int_equal(next, 6);
    events_items_clear(it, (size_t)n);
    n = events_read(ev, 0, &(events_filter_t){.devices = d1, .ndevices = 1}, it, 1, &next, &missed);
    assert_int_equal(n, 1);
    assert_int_equal(next, 1);
    events_items_clear(it, (size_t)n);

    /* pending: no copy, resumable */
    uint64_t scanned = 0;
    f = (events_filter_t){.devices = d23, .ndevices = 2};
    assert_true(events_pending(ev, 0, &f, &scanned));
    assert_int_equal(scanned, 2);
    assert_true(events_pending(ev, 2, &f, &scanned));
    assert_int_equal(scanned, 4);
    assert_false(events_pending(ev, 4, &f, &scanned));
    assert_int_equal(scanned, 6);
    assert_false(events_pending(ev, 6, NULL, &scanned));
    assert_true(events_pending(ev, 5, NULL, NULL));
    events_free(&ev);
}

typedef struct {
    events_t *ev;
    int delay_ms;
} late_t;

static void *late_publisher(void *arg)
{
    late_t *l = arg;
    sleep_ms(l->delay_ms);
    events_publish(l->ev, "request", 4, "d4", "/", NULL);
    return NULL;
}

static void *late_waker(void *arg)
{
    late_t *l = arg;
    sleep_ms(l->delay_ms);
    events_wake(l->ev);
    return NULL;
}

static void test_wait(void **state)
{
    (void)state;
    events_t *ev = events_new(16);
    /* timeout: nothing new */
    int64_t t0 = mono_ms();
    assert_int_equal(events_wait(ev, 0, 150), 0);
    int64_t dt = mono_ms() - t0;
    assert_true(dt >= 140 && dt < 2000);
    /* already newer: at once */
    events_publish(ev, "update", 1, NULL, NULL, NULL);
    t0 = mono_ms();
    assert_int_equal(events_wait(ev, 0, 5000), 1);
    assert_true(mono_ms() - t0 < 100);
    assert_int_equal(events_wait(ev, 1, 0), 1);
    /* a publisher in another thread ends the wait early */
    late_t l = {ev, 80};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_publisher, &l), 0);
    t0 = mono_ms();
    assert_int_equal(events_wait(ev, 1, 5000), 2);
    dt = mono_ms() - t0;
    assert_true(dt >= 60 && dt < 2000);
    pthread_join(th, NULL);
    /* events_wake ends it without an event */
    assert_int_equal(pthread_create(&th, NULL, late_waker, &l), 0);
    t0 = mono_ms();
    assert_int_equal(events_wait(ev, 2, 5000), 2);
    dt = mono_ms() - t0;
    assert_true(dt >= 60 && dt < 2000);
    pthread_join(th, NULL);
    events_free(&ev);
}

#define NPUB 6
#define PER_PUB 3000

typedef struct {
    events_t *ev;
    int id;
    int fails;                    /* cmocka asserts belong to the main thread */
} pub_t;

static void *publisher(void *arg)
{
    pub_t *p = arg;
    for (int i = 0; i < PER_PUB; i++)
        if (events_publish(p->ev, "notification", p->id, NULL, "/", json_pack("{s:i, s:i}", "p", p->id, "i", i)) == 0)
            p->fails++;
    return NULL;
}

typedef struct {
    events_t *ev;
    int got;
    int gaps;                     /* seq not following the previous one */
    int order_errors;             /* a publisher's events out of order */
    int missed;
} follower_t;

static void *follower(void *arg)
{
    follower_t *fo = arg;
    int last_i[NPUB + 1];
    for (int i = 0; i <= NPUB; i++)
        last_i[i] = -1;
    uint64_t after = 0;
    events_item_t it[64];
    while (fo->got < NPUB * PER_PUB) {
        events_wait(fo->ev, after, 1000);
        uint64_t next;
        bool missed;
        int n = events_read(fo->ev, after, NULL, it, 64, &next, &missed);
        if (n < 0)
            break;
        fo->missed += missed;
        for (int i = 0; i < n; i++) {
            if (it[i].seq != after + 1)
                fo->gaps++;
            after = it[i].seq;
            json_t *o = json_loads(it[i].json, 0, NULL);
            json_t *d = json_object_get(o, "data");
            int p = (int)json_integer_value(json_object_get(d, "p"));
            int k = (int)json_integer_value(json_object_get(d, "i"));
            if (p < 1 || p > NPUB || k != last_i[p] + 1)
                fo->order_errors++;
            else
                last_i[p] = k;
            json_decref(o);
            fo->got++;
        }
        events_items_clear(it, (size_t)n);
    }
    return NULL;
}

static void test_concurrent_publishers(void **state)
{
    (void)state;
    events_t *ev = events_new(NPUB * PER_PUB); /* big enough: the follower must see every event */
    follower_t fo = {ev, 0, 0, 0, 0};
    pthread_t fth, th[NPUB];
    pub_t p[NPUB];
    assert_int_equal(pthread_create(&fth, NULL, follower, &fo), 0);
    for (int i = 0; i < NPUB; i++) {
        p[i] = (pub_t){ev, i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, publisher, &p[i]), 0);
    }
    for (int i = 0; i < NPUB; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(p[i].fails, 0);
    }
    pthread_join(fth, NULL);
    assert_int_equal(events_last_seq(ev), NPUB * PER_PUB);
    assert_int_equal(fo.got, NPUB * PER_PUB);
    assert_int_equal(fo.gaps, 0);
    assert_int_equal(fo.order_errors, 0);
    assert_int_equal(fo.missed, 0);
    events_free(&ev);

    /* a small ring under the same load: readers are told what they missed */
    ev = events_new(64);
    for (int i = 0; i < NPUB; i++) {
        p[i] = (pub_t){ev, i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, publisher, &p[i]), 0);
    }
    for (int i = 0; i < NPUB; i++)
        pthread_join(th[i], NULL);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = events_read(ev, 0, NULL, it, 64, &next, &missed);
    assert_int_equal(n, 64);
    assert_true(missed);
    assert_int_equal(it[0].seq, NPUB * PER_PUB - 63);
    assert_int_equal(next, NPUB * PER_PUB);
    events_items_clear(it, (size_t)n);
    events_free(&ev);
}

static void test_batch(void **state)
{
    (void)state;
    events_t *ev = events_new(16);
    events_batch_t b = {0};
    events_batch_publish(ev, &b); /* empty: nothing */
    events_batch_add(&b, "bootstrap", 3, "d3", "/x/", json_pack("{s:s}", "status", "started"));
    events_batch_add(&b, "task-status", 3, NULL, NULL, NULL);
    events_batch_add(&b, "", 3, NULL, NULL, json_object()); /* refused, data freed */
    assert_int_equal(events_last_seq(ev), 0); /* held */
    events_batch_publish(ev, &b);
    assert_int_equal(events_last_seq(ev), 2);
    events_batch_publish(ev, &b); /* emptied */
    assert_int_equal(events_last_seq(ev), 2);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_int_equal(n, 2);
    json_t *o = json_loads(it[0].json, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "bootstrap");
    assert_string_equal(json_string_value(json_object_get(o, "domain")), "/x/");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data"), "status")), "started");
    json_decref(o);
    o = json_loads(it[1].json, 0, NULL);
    assert_true(json_is_null(json_object_get(o, "endpoint")));
    assert_string_equal(json_string_value(json_object_get(o, "domain")), "/");
    assert_int_equal(json_integer_value(json_object_get(o, "deviceId")), 3);
    json_decref(o);
    events_items_clear(it, (size_t)n);
    /* no bus: dropped; clear frees what is held */
    events_batch_add(&b, "update", 1, NULL, NULL, json_object());
    events_batch_publish(NULL, &b);
    events_batch_add(&b, "update", 1, NULL, NULL, json_object());
    events_batch_clear(&b);
    assert_null(b.es);
    assert_int_equal(b.n, 0);
    assert_int_equal(events_last_seq(ev), 2);
    events_free(&ev);
}

/* ------------------------------------------------- data as JSON text */
#define FFFD "\xef\xbf\xbd" /* U+FFFD, the replacement character, in UTF-8 */

/* s with bytes outside printable ASCII as \xNN, for failure messages (one
 * static buffer: one call per message). */
static const char *shown(const char *s)
{
    static char out[1024];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; p && *p && o + 5 < sizeof out; p++)
        o += (size_t)snprintf(out + o, sizeof out - o, *p >= 0x20 && *p < 0x7f ? "%c" : "\\x%02x", *p);
    out[o] = 0;
    return s ? out : "(null)";
}

/* The parsed text of an item: fails with the text when it is not JSON. */
static json_t *item_json(const events_item_t *it)
{
    json_error_t je;
    json_t *o = json_loads(it->json, 0, &je);
    if (!o)
        fail_msg("seq %llu is not JSON (%s, at %d): %s", (unsigned long long)it->seq, je.text, je.position,
                 shown(it->json));
    assert_true(json_is_object(o));
    return o;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && memcmp(s + n - t, tail, t) == 0;
}

/* Publishes d (taken: empty after) as the one event of a new bus and returns
 * its parsed text; *text (may be NULL) gets a copy of the text (free it). */
static json_t *publish_data(events_data_t *d, char **text)
{
    events_t *ev = events_new(4);
    assert_non_null(ev);
    events_batch_t b = {0};
    events_batch_add_data(&b, "update", 5, "ep", "/", d);
    assert_null(d->s);
    assert_int_equal(d->n, 0);
    assert_int_equal(d->cap, 0);
    assert_int_equal(b.n, 1);
    events_batch_publish(ev, &b);
    events_batch_clear(&b);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(it[0].json), it[0].json_len);
    json_t *o = item_json(&it[0]);
    if (text) {
        *text = strdup(it[0].json);
        assert_non_null(*text);
    }
    events_items_clear(it, (size_t)n);
    events_free(&ev);
    return o;
}

/* events_data_str: `in` is published as data.v; `out` is what a JSON parser
 * reads back (NULL: null); `enc`, when given, is the value's text as written
 * (the text then ends with "data":{"v":<enc>}}). Invalid UTF-8 is replaced
 * byte by byte: each byte that does not start a valid sequence becomes one
 * U+FFFD and the scan goes on at the next byte, so a bad multi-byte sequence
 * gives one U+FFFD per byte. */
#define CTL                                                                                                            \
    "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c" \
    "\x1d\x1e\x1f\x7f"
static const struct {
    const char *name, *in, *out, *enc;
} str_rows[] = {
    {"plain ASCII", "hello, world /:{}[]'~`", "hello, world /:{}[]'~`", "\"hello, world /:{}[]'~`\""},
    {"empty", "", "", "\"\""},
    {"quote and backslash", "say \"hi\" C:\\dir\\", "say \"hi\" C:\\dir\\", "\"say \\\"hi\\\" C:\\\\dir\\\\\""},
    {"only a quote", "\"", "\"", "\"\\\"\""},
    {"only a backslash", "\\", "\\", "\"\\\\\""},
    {"controls 0x01..0x1f and 0x7f", CTL, CTL, NULL},
    {"controls among text", "a\tb\nc\rd\x1b[0m\x7f" "e", "a\tb\nc\rd\x1b[0m\x7f" "e", NULL},
    {"UTF-8 2, 3, 4 bytes kept", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
     "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\""},
    {"UTF-8 in text", "caf\xc3\xa9 5\xe2\x82\xac \"\xf0\x9f\x98\x80\"", "caf\xc3\xa9 5\xe2\x82\xac \"\xf0\x9f\x98\x80\"",
     "\"caf\xc3\xa9 5\xe2\x82\xac \\\"\xf0\x9f\x98\x80\\\"\""},
    /* U+0080 U+07FF U+0800 U+D7FF U+E000 U+FFFF U+10000 U+10FFFF */
    {"UTF-8 range ends kept", "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
     "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
     "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\""},
    {"lone continuation 0x80", "a\x80" "b", "a" FFFD "b", "\"a\\ufffdb\""},
    {"continuations 0x80 0xbf", "\x80\xbf", FFFD FFFD, NULL},
    {"truncated 2-byte at the end", "a\xc3", "a" FFFD, NULL},
    {"truncated 2-byte before ASCII", "\xc3(", FFFD "(", NULL},
    {"truncated 3-byte at the end", "\xe2\x82", FFFD FFFD, NULL},
    {"truncated 4-byte at the end", "\xf0\x9f\x98", FFFD FFFD FFFD, NULL},
    {"truncated 4-byte before a quote", "\xf0\x9f\x98\"", FFFD FFFD FFFD "\"", NULL},
    {"overlong c0 af", "\xc0\xaf", FFFD FFFD, NULL},
    {"overlong c1 bf", "\xc1\xbf", FFFD FFFD, NULL},
    {"overlong 3-byte e0 80 af", "\xe0\x80\xaf", FFFD FFFD FFFD, NULL},
    {"overlong 4-byte f0 80 80 af", "\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD, NULL},
    {"surrogate ed a0 80", "\xed\xa0\x80", FFFD FFFD FFFD, NULL},
    {"surrogate pair, each encoded", "\xed\xa0\xbd\xed\xb8\x80", FFFD FFFD FFFD FFFD FFFD FFFD, NULL},
    {"above U+10FFFF f4 90 80 80", "\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD, NULL},
    {"lead f5", "\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD, NULL},
    {"0xff", "\xff", FFFD, "\"\\ufffd\""},
    {"0xfe and 0xff among text", "x\xfey\xffz", "x" FFFD "y" FFFD "z", NULL},
    {"valid after invalid", "\x80\xc3\xa9\xc3", FFFD "\xc3\xa9" FFFD, NULL},
    {"invalid then control then quote", "\xc3\x01\"", FFFD "\x01\"", NULL},
    {"NULL", NULL, NULL, "null"},
};

static void test_data_str_table(void **state)
{
    (void)state;
    const size_t nrows = sizeof str_rows / sizeof *str_rows;
    assert_true(nrows <= 64);
    events_t *ev = events_new(64);
    events_batch_t b = {0};
    for (size_t i = 0; i < nrows; i++) {
        events_data_t d = {0};
        events_data_str(&d, "v", str_rows[i].in);
        assert_false(d.oom);
        events_batch_add_data(&b, "update", (int64_t)i + 1, "ep", "/", &d);
        assert_null(d.s);
    }
    assert_int_equal(b.n, nrows);
    events_batch_publish(ev, &b);
    events_batch_clear(&b);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_int_equal(n, (int)nrows);
    for (size_t i = 0; i < nrows; i++) {
        const char *name = str_rows[i].name, *out = str_rows[i].out, *enc = str_rows[i].enc;
        json_t *o = item_json(&it[i]);
        assert_int_equal(json_integer_value(json_object_get(o, "deviceId")), (json_int_t)i + 1);
        json_t *data = json_object_get(o, "data");
        assert_true(json_is_object(data));
        assert_int_equal(json_object_size(data), 1);
        json_t *v = json_object_get(data, "v");
        if (!out) {
            if (!json_is_null(v))
                fail_msg("%s: not null in %s", name, shown(it[i].json));
        } else if (!json_is_string(v) || json_string_length(v) != strlen(out) ||
                   strcmp(json_string_value(v), out) != 0) {
            char want[1024];
            snprintf(want, sizeof want, "%s", shown(out));
            fail_msg("%s: read back %s, want %s (text %s)", name, json_is_string(v) ? shown(json_string_value(v)) : "?",
                     want, it[i].json);
        }
        if (enc) {
            char tail[256];
            snprintf(tail, sizeof tail, "\"data\":{\"v\":%s}}", enc);
            if (!ends_with(it[i].json, tail))
                fail_msg("%s: text %s does not end with %s", name, shown(it[i].json), tail);
        }
        json_decref(o);
    }
    events_items_clear(it, (size_t)n);
    events_free(&ev);
}

static void test_data_int(void **state)
{
    (void)state;
    const long long vals[] = {0, -1, 42, -1234567890123LL, LLONG_MAX, LLONG_MIN};
    const char *texts[] = {"0", "-1", "42", "-1234567890123", "9223372036854775807", "-9223372036854775808"};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        events_data_t d = {0};
        events_data_int(&d, "n", vals[i]);
        char *text;
        json_t *o = publish_data(&d, &text);
        json_t *v = json_object_get(json_object_get(o, "data"), "n");
        assert_true(json_is_integer(v));
        assert_true(json_integer_value(v) == vals[i]);
        char tail[64];
        snprintf(tail, sizeof tail, "\"data\":{\"n\":%s}}", texts[i]);
        if (!ends_with(text, tail))
            fail_msg("%lld: text %s does not end with %s", vals[i], text, tail);
        free(text);
        json_decref(o);
    }
}

static void test_data_keys(void **state)
{
    (void)state;
    /* several keys, strings, integers and null mixed: that object, in that order */
    events_data_t d = {0};
    events_data_str(&d, "status", "started");
    events_data_int(&d, "step", 3);
    events_data_str(&d, "error", NULL);
    events_data_str(&d, "ep", "");
    events_data_int(&d, "code", -4);
    events_data_str(&d, "a", "z");
    char *text;
    json_t *o = publish_data(&d, &text);
    const char *tail = "\"data\":{\"status\":\"started\",\"step\":3,\"error\":null,\"ep\":\"\",\"code\":-4,\"a\":\"z\"}}";
    if (!ends_with(text, tail))
        fail_msg("text %s does not end with %s", text, tail);
    json_t *data = json_object_get(o, "data");
    assert_int_equal(json_object_size(data), 6);
    assert_string_equal(json_string_value(json_object_get(data, "status")), "started");
    assert_int_equal(json_integer_value(json_object_get(data, "step")), 3);
    assert_true(json_is_null(json_object_get(data, "error")));
    assert_string_equal(json_string_value(json_object_get(data, "ep")), "");
    assert_int_equal(json_integer_value(json_object_get(data, "code")), -4);
    assert_string_equal(json_string_value(json_object_get(data, "a")), "z");
    /* the parser sees them in the same order */
    const char *order[] = {"status", "step", "error", "ep", "code", "a"};
    size_t k = 0;
    for (void *iter = json_object_iter(data); iter; iter = json_object_iter_next(data, iter), k++) {
        assert_true(k < 6);
        assert_string_equal(json_object_iter_key(iter), order[k]);
    }
    assert_int_equal(k, 6);
    free(text);
    json_decref(o);

    /* empty: data {} */
    d = (events_data_t){0};
    o = publish_data(&d, &text);
    if (!ends_with(text, ",\"data\":{}}"))
        fail_msg("empty data: %s", text);
    assert_true(json_is_object(json_object_get(o, "data")));
    assert_int_equal(json_object_size(json_object_get(o, "data")), 0);
    free(text);
    json_decref(o);

    /* one key */
    events_data_int(&d, "only", 1);
    o = publish_data(&d, &text);
    assert_true(ends_with(text, ",\"data\":{\"only\":1}}"));
    assert_int_equal(json_object_size(json_object_get(o, "data")), 1);
    free(text);
    json_decref(o);
}

/* it's text with its seq and its time blanked (the seq differs, and the two
 * events were stamped each when added, maybe a millisecond apart). */
static char *blank_seq_time(const events_item_t *it)
{
    const char *rest = strchr(it->json, ',');
    assert_non_null(rest);
    char *s = strdup(rest);
    assert_non_null(s);
    char *t = strstr(s, "\"time\":\"");
    assert_non_null(t);
    t += 8;
    assert_true(strlen(t) > 24);
    assert_int_equal(t[24], '"');
    memset(t, '#', 24);
    return s;
}

static void test_data_splice(void **state)
{
    (void)state;
    events_t *ev = events_new(16);
    events_batch_t b = {0};
    /* pairs of events with the same fields, the data once as a jansson
     * object, once as text */
    events_batch_add(&b, "bootstrap", 7, "sim-\"1\"", "/acme/", json_pack("{s:s, s:i, s:n}", "status", "started", "n", 5, "x"));
    events_data_t d = {0};
    events_data_str(&d, "status", "started");
    events_data_int(&d, "n", 5);
    events_data_str(&d, "x", NULL);
    events_batch_add_data(&b, "bootstrap", 7, "sim-\"1\"", "/acme/", &d);
    events_batch_add(&b, "bootstrap-step", 0, NULL, NULL, NULL);
    events_batch_add_data(&b, "bootstrap-step", 0, NULL, NULL, &d);
    events_batch_add(&b, "expiry", -3, "e", "", json_pack("{s:s}", "k", "v"));
    events_data_str(&d, "k", "v");
    events_batch_add_data(&b, "expiry", -3, "e", "", &d);
    events_batch_publish(ev, &b);
    events_batch_clear(&b);

    for (int pass = 0; pass < 2; pass++) { /* the first read renders, the second reads the cached text */
        events_item_t it[64];
        uint64_t next;
        bool missed;
        int n = read_all(ev, 0, NULL, it, &next, &missed);
        assert_int_equal(n, 6);
        for (int i = 0; i < n; i += 2) {
            json_t *a = item_json(&it[i]), *t = item_json(&it[i + 1]);
            assert_int_equal(it[i + 1].seq, (uint64_t)i + 2);
            assert_int_equal(json_integer_value(json_object_get(t, "seq")), i + 2);
            assert_int_equal(json_integer_value(json_object_get(a, "seq")), i + 1);
            assert_string_equal(it[i + 1].type, it[i].type);
            /* exactly the keys of an event, each as in the jansson-built twin */
            assert_int_equal(json_object_size(t), 7);
            const char *keys[] = {"type", "time", "deviceId", "endpoint", "domain", "data"};
            for (size_t k = 0; k < 6; k++) {
                json_t *va = json_object_get(a, keys[k]), *vt = json_object_get(t, keys[k]);
                assert_non_null(vt);
                if (strcmp(keys[k], "time") != 0 && !json_equal(va, vt))
                    fail_msg("%s differs: %s vs %s", keys[k], it[i].json, it[i + 1].json);
            }
            const char *ta = json_string_value(json_object_get(a, "time"));
            const char *tt = json_string_value(json_object_get(t, "time"));
            assert_non_null(tt);
            assert_int_equal(strlen(tt), 24);
            assert_int_equal(tt[10], 'T');
            assert_int_equal(tt[23], 'Z');
            assert_non_null(ta);
            assert_int_equal(strlen(ta), 24);
            /* and the whole text is the twin's, but for seq and time */
            char head[64];
            snprintf(head, sizeof head, "{\"seq\":%d,\"type\":\"%s\",\"time\":\"", i + 2, it[i].type);
            assert_true(strncmp(it[i + 1].json, head, strlen(head)) == 0);
            char *sa = blank_seq_time(&it[i]), *st = blank_seq_time(&it[i + 1]);
            assert_string_equal(st, sa);
            free(sa);
            free(st);
            json_decref(a);
            json_decref(t);
        }
        /* the fields themselves */
        json_t *o = item_json(&it[1]);
        assert_string_equal(json_string_value(json_object_get(o, "type")), "bootstrap");
        assert_int_equal(json_integer_value(json_object_get(o, "deviceId")), 7);
        assert_string_equal(json_string_value(json_object_get(o, "endpoint")), "sim-\"1\"");
        assert_string_equal(json_string_value(json_object_get(o, "domain")), "/acme/");
        json_decref(o);
        o = item_json(&it[3]);
        assert_true(json_is_null(json_object_get(o, "deviceId")));
        assert_true(json_is_null(json_object_get(o, "endpoint")));
        assert_string_equal(json_string_value(json_object_get(o, "domain")), "/");
        assert_int_equal(json_object_size(json_object_get(o, "data")), 0);
        json_decref(o);
        o = item_json(&it[5]);
        assert_true(json_is_null(json_object_get(o, "deviceId")));
        assert_string_equal(json_string_value(json_object_get(o, "domain")), "/");
        json_decref(o);
        events_items_clear(it, (size_t)n);
    }
    /* filters see add_data events like the others */
    int64_t d7[] = {7};
    events_filter_t f = {.devices = d7, .ndevices = 1, .domain = "/acme/"};
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = read_all(ev, 0, &f, it, &next, &missed);
    assert_int_equal(n, 2);
    assert_int_equal(it[1].seq, 2);
    events_items_clear(it, (size_t)n);
    events_free(&ev);
}

static void test_data_long(void **state)
{
    (void)state;
    /* 10,000 characters of plain ASCII */
    enum { LONG_LEN = 10000 };
    char *v = malloc(LONG_LEN + 1);
    assert_non_null(v);
    for (int i = 0; i < LONG_LEN; i++)
        v[i] = (char)('a' + i % 26);
    v[LONG_LEN] = 0;
    events_data_t d = {0};
    events_data_str(&d, "before", "x");
    events_data_str(&d, "v", v);
    events_data_int(&d, "after", 1);
    assert_false(d.oom);
    assert_true(d.n + 2 <= d.cap);
    json_t *o = publish_data(&d, NULL);
    json_t *data = json_object_get(o, "data");
    assert_int_equal(json_object_size(data), 3);
    assert_int_equal(json_string_length(json_object_get(data, "v")), LONG_LEN);
    assert_string_equal(json_string_value(json_object_get(data, "v")), v);
    assert_string_equal(json_string_value(json_object_get(data, "before")), "x");
    assert_int_equal(json_integer_value(json_object_get(data, "after")), 1);
    json_decref(o);

    /* 10,000 characters needing escapes, multi-byte and invalid: the text
     * grows by more than the input */
    size_t wl = 0;
    char *want = malloc(LONG_LEN * 4 + 1);
    assert_non_null(want);
    size_t vl = 0;
    char *mixed = malloc(LONG_LEN * 4 + 1);
    assert_non_null(mixed);
    for (int i = 0; i < LONG_LEN; i++) {
        static const char *const in[] = {"q", "\"", "\\", "\x01", "\x7f", "\xc3\xa9", "\xf0\x9f\x98\x80", "\x80"};
        static const char *const out[] = {"q", "\"", "\\", "\x01", "\x7f", "\xc3\xa9", "\xf0\x9f\x98\x80", FFFD};
        size_t k = (size_t)i % 8, il = strlen(in[k]), ol = strlen(out[k]);
        memcpy(mixed + vl, in[k], il);
        vl += il;
        memcpy(want + wl, out[k], ol);
        wl += ol;
    }
    mixed[vl] = 0;
    want[wl] = 0;
    events_data_str(&d, "v", mixed);
    assert_false(d.oom);
    o = publish_data(&d, NULL);
    data = json_object_get(o, "data");
    assert_int_equal(json_string_length(json_object_get(data, "v")), wl);
    assert_true(strcmp(json_string_value(json_object_get(data, "v")), want) == 0);
    json_decref(o);

    /* every length across the first growths (the buffer starts at 128 and
     * doubles): the closing brace and the NUL always fit */
    for (size_t len = 0; len <= 600; len++) {
        memset(v, 'y', len);
        v[len] = 0;
        events_data_str(&d, "v", v);
        o = publish_data(&d, NULL);
        json_t *s = json_object_get(json_object_get(o, "data"), "v");
        assert_int_equal(json_string_length(s), len);
        assert_string_equal(json_string_value(s), v);
        json_decref(o);
    }
    /* many keys: many small appends */
    for (int i = 0; i < 2000; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        events_data_int(&d, key, i);
        assert_true(d.n + 2 <= d.cap);
    }
    o = publish_data(&d, NULL);
    data = json_object_get(o, "data");
    assert_int_equal(json_object_size(data), 2000);
    assert_int_equal(json_integer_value(json_object_get(data, "k0")), 0);
    assert_int_equal(json_integer_value(json_object_get(data, "k1999")), 1999);
    json_decref(o);
    free(v);
    free(want);
    free(mixed);
}

static void test_data_dropped(void **state)
{
    (void)state;
    events_t *ev = events_new(16);
    events_batch_t b = {0};
    /* bad types: the event is dropped, its data freed (ASan: no leak) and d
     * left empty */
    char long_type[41];
    memset(long_type, 't', 40);
    long_type[40] = 0;
    char type32[EVENTS_TYPE_MAX + 1];
    memset(type32, 'u', EVENTS_TYPE_MAX);
    type32[EVENTS_TYPE_MAX] = 0; /* 32 characters: one too many */
    const char *bad[] = {"", NULL, long_type, type32};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        events_data_t d = {0};
        events_data_str(&d, "status", "started");
        events_data_int(&d, "n", 1);
        events_batch_add_data(&b, bad[i], 1, "ep", "/", &d);
        assert_int_equal(b.n, 0);
        assert_null(d.s);
        assert_int_equal(d.n, 0);
        assert_int_equal(d.cap, 0);
        assert_false(d.oom);
        events_batch_add_data(&b, bad[i], 1, "ep", "/", &d); /* empty data too */
        assert_int_equal(b.n, 0);
    }
    /* the longest type allowed (31 characters) passes */
    type32[EVENTS_TYPE_MAX - 1] = 0;
    events_data_t d = {0};
    events_data_str(&d, "k", "v");
    events_batch_add_data(&b, type32, 1, "ep", "/", &d);
    assert_int_equal(b.n, 1);
    /* no batch: dropped and freed */
    events_data_str(&d, "k", "v");
    events_batch_add_data(NULL, "update", 1, NULL, NULL, &d);
    assert_null(d.s);
    /* out of memory while building (the flag a failed append sets): the
     * event is lost, as with events_batch_add, and d is freed */
    events_data_str(&d, "k", "v");
    d.oom = true;
    events_data_str(&d, "k2", "ignored");
    events_batch_add_data(&b, "update", 1, NULL, NULL, &d);
    assert_int_equal(b.n, 1);
    assert_null(d.s);
    assert_false(d.oom);
    events_batch_publish(ev, &b);
    assert_int_equal(events_last_seq(ev), 1);
    events_item_t it[64];
    uint64_t next;
    bool missed;
    int n = read_all(ev, 0, NULL, it, &next, &missed);
    assert_int_equal(n, 1);
    assert_string_equal(it[0].type, type32);
    json_t *o = item_json(&it[0]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data"), "k")), "v");
    json_decref(o);
    events_items_clear(it, (size_t)n);

    /* events_data_clear on a partly built object frees it; d is then empty
     * and reusable, and clearing twice is harmless */
    events_data_str(&d, "a", "partly");
    events_data_int(&d, "b", 2);
    events_data_str(&d, "c", NULL);
    assert_non_null(d.s);
    events_data_clear(&d);
    assert_null(d.s);
    assert_int_equal(d.n, 0);
    assert_int_equal(d.cap, 0);
    events_data_clear(&d);
    events_data_clear(&(events_data_t){0});
    events_data_str(&d, "again", "yes");
    o = publish_data(&d, NULL);
    assert_int_equal(json_object_size(json_object_get(o, "data")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "data"), "again")), "yes");
    json_decref(o);
    events_batch_clear(&b);
    events_free(&ev);
}

static void test_data_batch_clear(void **state)
{
    (void)state;
    events_t *ev = events_new(2);
    events_batch_t b = {0};
    /* held, never published: clear frees their texts (ASan: no leak) */
    for (int i = 0; i < 40; i++) { /* past the batch's first growth (16) */
        events_data_t d = {0};
        events_data_str(&d, "s", "held");
        events_data_int(&d, "i", i);
        events_batch_add_data(&b, "update", i + 1, "ep", "/", &d);
    }
    events_batch_add(&b, "update", 1, NULL, NULL, json_object()); /* and a jansson one among them */
    assert_int_equal(b.n, 41);
    events_batch_clear(&b);
    assert_null(b.es);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(events_last_seq(ev), 0);
    /* no bus: dropped and freed */
    events_data_t d = {0};
    events_data_str(&d, "s", "x");
    events_batch_add_data(&b, "update", 1, NULL, NULL, &d);
    events_batch_publish(NULL, &b);
    assert_int_equal(b.n, 0);
    /* published but never read: evicted from a small ring, or freed with the
     * bus, without ever being rendered */
    for (int i = 0; i < 5; i++) {
        events_data_str(&d, "s", "unread");
        events_batch_add_data(&b, "update", 1, NULL, NULL, &d);
    }
    events_batch_publish(ev, &b);
    assert_int_equal(events_last_seq(ev), 5);
    events_batch_clear(&b);
    events_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_and_text),
        cmocka_unit_test(test_ring_overflow),
        cmocka_unit_test(test_filters_and_paging),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_concurrent_publishers),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_data_str_table),
        cmocka_unit_test(test_data_int),
        cmocka_unit_test(test_data_keys),
        cmocka_unit_test(test_data_splice),
        cmocka_unit_test(test_data_long),
        cmocka_unit_test(test_data_dropped),
        cmocka_unit_test(test_data_batch_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
