/* tests for server/common/events.c: seq numbering and event text, ring
 * overflow, filters, paging, waiting (timeout, wake-up, a publisher in
 * another thread), concurrent publishers with a reader following, and the
 * publish-after-commit batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_and_text),
        cmocka_unit_test(test_ring_overflow),
        cmocka_unit_test(test_filters_and_paging),
        cmocka_unit_test(test_wait),
        cmocka_unit_test(test_concurrent_publishers),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
