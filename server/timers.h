/* Timer heap: a binary min-heap of deadlines (monotonic ms) with ties broken by
 * insertion order. Timers are embedded in their owners (libuv style): the
 * owner's struct holds a timer_t, and the heap never allocates per timer.
 * Pure: the caller passes `now`. Only the loop thread touches it. */
#ifndef LWDM_TIMERS_H
#define LWDM_TIMERS_H
#include <stddef.h>
#include <stdint.h>

struct timer;
typedef void (*timer_cb)(struct timer *t, void *arg);

typedef struct timer {
    int64_t deadline_ms;
    uint64_t seq;
    size_t index;      /* position in the heap; SIZE_MAX when not armed */
    timer_cb cb;
    void *arg;
} lwdm_timer_t;

typedef struct {
    lwdm_timer_t **heap;
    size_t n, cap;
    uint64_t next_seq;
} timer_heap_t;

void timer_heap_init(timer_heap_t *h);
void timer_heap_free(timer_heap_t *h);           /* does not touch the timers */
void timer_init(lwdm_timer_t *t, timer_cb cb, void *arg);
/* Arms (or re-arms: stops first) t to fire at deadline_ms. Returns 0 or -1 (ENOMEM). */
int timer_start(timer_heap_t *h, lwdm_timer_t *t, int64_t deadline_ms);
/* Disarms t if armed; safe to call on an unarmed timer. */
void timer_stop(timer_heap_t *h, lwdm_timer_t *t);
int timer_armed(const lwdm_timer_t *t);
/* Deadline of the earliest timer, or -1 if none. */
int64_t timer_heap_next(const timer_heap_t *h);
/* Fires every timer whose deadline is <= now, in deadline order. A callback may
 * start or stop any timer (including its own). Returns the number fired. */
size_t timer_heap_run(timer_heap_t *h, int64_t now_ms);
size_t timer_heap_count(const timer_heap_t *h);

#endif
