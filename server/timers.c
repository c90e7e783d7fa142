#include "server/timers.h"

#include <stdint.h>
#include <stdlib.h>

void timer_heap_init(timer_heap_t *h) { h->heap = NULL; h->n = h->cap = 0; h->next_seq = 0; }

void timer_heap_free(timer_heap_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->heap[i]->index = SIZE_MAX;
    free(h->heap);
    timer_heap_init(h);
}

void timer_init(lwdm_timer_t *t, timer_cb cb, void *arg)
{
    t->deadline_ms = 0;
    t->seq = 0;
    t->index = SIZE_MAX;
    t->cb = cb;
    t->arg = arg;
}

int timer_armed(const lwdm_timer_t *t) { return t->index != SIZE_MAX; }
size_t timer_heap_count(const timer_heap_t *h) { return h->n; }

static int less(const lwdm_timer_t *a, const lwdm_timer_t *b)
{
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void place(timer_heap_t *h, size_t i, lwdm_timer_t *t)
{
    h->heap[i] = t;
    t->index = i;
}

static void sift_up(timer_heap_t *h, size_t i)
{
    lwdm_timer_t *t = h->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!less(t, h->heap[p]))
            break;
        place(h, i, h->heap[p]);
        i = p;
    }
    place(h, i, t);
}

static void sift_down(timer_heap_t *h, size_t i)
{
    lwdm_timer_t *t = h->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const lwdm_timer_t *best = t;
        if (l < h->n && less(h->heap[l], best))
            m = l, best = h->heap[l];
        if (r < h->n && less(h->heap[r], best))
            m = r;
        if (m == i)
            break;
        place(h, i, h->heap[m]);
        i = m;
    }
    place(h, i, t);
}

void timer_stop(timer_heap_t *h, lwdm_timer_t *t)
{
    if (t->index == SIZE_MAX)
        return;
    size_t i = t->index;
    t->index = SIZE_MAX;
    h->n--;
    if (i == h->n)
        return;
    place(h, i, h->heap[h->n]);
    /* the moved timer may need to go either way; after sift_up it sits at
       its final index if it moved, so sift down from wherever it is now */
    lwdm_timer_t *moved = h->heap[i];
    sift_up(h, i);
    sift_down(h, moved->index);
}

int timer_start(timer_heap_t *h, lwdm_timer_t *t, int64_t deadline_ms)
{
    timer_stop(h, t);
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        lwdm_timer_t **nh = realloc(h->heap, nc * sizeof *nh);
        if (!nh)
            return -1;
        h->heap = nh;
        h->cap = nc;
    }
    t->deadline_ms = deadline_ms;
    t->seq = h->next_seq++;
    place(h, h->n++, t);
    sift_up(h, t->index);
    return 0;
}

int64_t timer_heap_next(const timer_heap_t *h) { return h->n ? h->heap[0]->deadline_ms : -1; }

size_t timer_heap_run(timer_heap_t *h, int64_t now_ms)
{
    size_t fired = 0;
    while (h->n && h->heap[0]->deadline_ms <= now_ms) {
        lwdm_timer_t *t = h->heap[0];
        timer_stop(h, t);
        fired++;
        if (t->cb)
            t->cb(t, t->arg);
    }
    return fired;
}
