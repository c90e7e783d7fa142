/* tests for server/timers.c: order, ties, stop/re-arm, callbacks that re-arm. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "server/timers.h"

static int g_order[64], g_n;
static timer_heap_t *g_heap;

static void record(struct timer *t, void *arg)
{
    (void)t;
    g_order[g_n++] = (int)(intptr_t)arg;
}

static void test_order_and_ties(void **state)
{
    (void)state;
    timer_heap_t h;
    timer_heap_init(&h);
    lwdm_timer_t t[6];
    int64_t dl[6] = {50, 10, 30, 10, 20, 10};
    for (int i = 0; i < 6; i++) {
        timer_init(&t[i], record, (void *)(intptr_t)i);
        assert_int_equal(timer_start(&h, &t[i], dl[i]), 0);
    }
    g_n = 0;
    assert_int_equal(timer_heap_next(&h), 10);
    assert_int_equal(timer_heap_run(&h, 25), 4);
    int want[] = {1, 3, 5, 4}; /* ties in insertion order */
    for (int i = 0; i < 4; i++)
        assert_int_equal(g_order[i], want[i]);
    assert_int_equal(timer_heap_count(&h), 2);
    timer_stop(&h, &t[2]);
    assert_false(timer_armed(&t[2]));
    assert_int_equal(timer_heap_run(&h, 100), 1);
    assert_int_equal(g_order[4], 0);
    assert_int_equal(timer_heap_next(&h), -1);
    timer_heap_free(&h);
}

static void test_restart_moves(void **state)
{
    (void)state;
    timer_heap_t h;
    timer_heap_init(&h);
    lwdm_timer_t a, b;
    timer_init(&a, record, (void *)1);
    timer_init(&b, record, (void *)2);
    timer_start(&h, &a, 10);
    timer_start(&h, &b, 20);
    timer_start(&h, &a, 30); /* re-arm stops first */
    assert_int_equal(timer_heap_count(&h), 2);
    g_n = 0;
    timer_heap_run(&h, 100);
    assert_int_equal(g_n, 2);
    assert_int_equal(g_order[0], 2);
    assert_int_equal(g_order[1], 1);
    timer_heap_free(&h);
}

static lwdm_timer_t g_self;
static int g_fires;
static void rearm(struct timer *t, void *arg)
{
    (void)arg;
    if (++g_fires < 3)
        timer_start(g_heap, t, t->deadline_ms + 5);
}

static void test_callback_rearms_itself(void **state)
{
    (void)state;
    timer_heap_t h;
    timer_heap_init(&h);
    g_heap = &h;
    g_fires = 0;
    timer_init(&g_self, rearm, NULL);
    timer_start(&h, &g_self, 0);
    assert_int_equal(timer_heap_run(&h, 100), 3);
    assert_false(timer_armed(&g_self));
    timer_heap_free(&h);
}

static void test_many_random(void **state)
{
    (void)state;
    timer_heap_t h;
    timer_heap_init(&h);
    enum { N = 2000 };
    static lwdm_timer_t t[N];
    srand(7);
    for (int i = 0; i < N; i++) {
        timer_init(&t[i], NULL, NULL);
        timer_start(&h, &t[i], rand() % 1000);
    }
    for (int i = 0; i < N; i += 3)
        timer_stop(&h, &t[i]);
    int64_t last = -1;
    size_t left = timer_heap_count(&h);
    while (timer_heap_count(&h)) {
        int64_t n = timer_heap_next(&h);
        assert_true(n >= last);
        last = n;
        timer_heap_run(&h, n);
    }
    assert_int_equal(left, N - (N + 2) / 3);
    timer_heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_ties),
        cmocka_unit_test(test_restart_moves),
        cmocka_unit_test(test_callback_rearms_itself),
        cmocka_unit_test(test_many_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
