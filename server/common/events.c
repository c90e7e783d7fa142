/* Live events bus; see events.h for the contract.
 *
 * The ring is an array of `cap` slots indexed by seq % cap; it holds the
 * events oldest()..next_seq-1. A slot's event is immutable once published
 * except for its text, made once under the lock; an overwritten slot is
 * freed by the publisher that evicted it, after the lock is released.
 *
 * An event is kept as its fields and its `data` (a jansson object, or JSON
 * text from events_data_t on hot paths) and rendered to JSON by the first
 * reader that copies it (under the lock; later readers copy the
 * cached text). Most events are never read — no stream is open, or the
 * stream filters them out — so publishing costs no json_dumps. `data` is
 * owned by the event (jansson's reference counts are atomic, and nothing
 * modifies a published object). The text is the tail of the JSON object,
 * `"type":...}` after a `{` that is not stored: the seq is prefixed by the
 * reader as `{"seq":N,`.
 *
 * Locks: `lock` guards everything but `last`, which mirrors next_seq-1 for
 * lock-free peeks (events_last_seq). The condition variable uses the
 * monotonic clock. */
#include "server/common/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct events_entry {
    int64_t device_id;            /* 0: none */
    int64_t at_ms;
    char type[EVENTS_TYPE_MAX];
    char *domain;                 /* malloc'd */
    char *endpoint;               /* malloc'd or NULL */
    json_t *data;                 /* owned; NULL once rendered */
    char *data_text;              /* or this: owned "{...}" (events_data_t) */
    char *text;                   /* malloc'd "{...}" without seq, made by the first reader */
    size_t text_len;
} entry_t;

struct events {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    entry_t *ring;
    size_t cap;
    uint64_t next_seq;            /* seq of the next event (starts at 1) */
    uint64_t wake_gen;            /* bumped by events_wake */
    int seq_waiters;              /* events_wait_from() callers waiting for a new event */
    _Atomic uint64_t last;        /* next_seq - 1 */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void entry_clear(entry_t *e)
{
    free(e->domain);
    free(e->endpoint);
    json_decref(e->data);
    free(e->data_text);
    free(e->text);
    memset(e, 0, sizeof *e);
}

events_t *events_new(size_t capacity)
{
    events_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->cap = capacity ? capacity : EVENTS_DEFAULT_CAPACITY;
    ev->ring = calloc(ev->cap, sizeof *ev->ring);
    pthread_condattr_t ca;
    bool cond_ok = false;
    if (pthread_condattr_init(&ca) == 0) {
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&ev->cond, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!ev->ring || !cond_ok || pthread_mutex_init(&ev->lock, NULL) != 0) {
        if (cond_ok)
            pthread_cond_destroy(&ev->cond);
        free(ev->ring);
        free(ev);
        return NULL;
    }
    ev->next_seq = 1;
    atomic_store(&ev->last, 0);
    return ev;
}

void events_free(events_t **evp)
{
    events_t *ev = evp ? *evp : NULL;
    if (!ev)
        return;
    for (size_t i = 0; i < ev->cap; i++)
        entry_clear(&ev->ring[i]);
    free(ev->ring);
    pthread_cond_destroy(&ev->cond);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
    *evp = NULL;
}

/* "2026-11-22T10:00:00.123Z" */
static void format_time(int64_t ms, char out[48])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static bool type_ok(const char *type)
{
    size_t n = type ? strlen(type) : 0;
    return n > 0 && n < EVENTS_TYPE_MAX;
}

/* Fills *e with an event to publish (no lock held). Takes data. false: dropped. */
static bool entry_make(entry_t *e, int64_t at_ms, const char *type, int64_t device_id, const char *endpoint,
                       const char *domain, json_t *data)
{
    memset(e, 0, sizeof *e);
    if (!type_ok(type)) {
        json_decref(data);
        return false;
    }
    e->device_id = device_id > 0 ? device_id : 0;
    e->at_ms = at_ms;
    snprintf(e->type, sizeof e->type, "%s", type);
    e->domain = strdup(domain && *domain ? domain : "/");
    e->endpoint = endpoint ? strdup(endpoint) : NULL;
    e->data = data;
    if (!e->domain || (endpoint && !e->endpoint)) {
        entry_clear(e);
        return false;
    }
    return true;
}

/* Makes e->text from the event's fields (under the lock, once). false only
 * when memory runs out (the reader then reports ENOMEM and can try again). */
static bool entry_render(entry_t *e)
{
    if (e->text)
        return true;
    char when[48];
    format_time(e->at_ms, when);
    json_t *o = json_object();
    if (!o)
        return false;
    json_object_set_new(o, "type", json_string(e->type));
    json_object_set_new(o, "time", json_string(when));
    json_object_set_new(o, "deviceId", e->device_id > 0 ? json_integer(e->device_id) : json_null());
    json_object_set_new(o, "endpoint", e->endpoint ? json_string(e->endpoint) : json_null());
    json_object_set_new(o, "domain", json_string(e->domain));
    if (!e->data_text)
        json_object_set_new(o, "data", e->data ? json_incref(e->data) : json_object());
    char *text = json_dumps(o, JSON_COMPACT);
    if (!text && e->data) { /* data jansson cannot write: the event still reads, with {} */
        json_object_set_new(o, "data", json_object());
        text = json_dumps(o, JSON_COMPACT);
    }
    json_decref(o);
    if (!text || text[0] != '{') {
        free(text);
        return false;
    }
    size_t len = strlen(text);
    if (e->data_text) { /* `{...}` + `,"data":` + the data's text + `}` */
        size_t dl = strlen(e->data_text);
        char *t = malloc(len + 8 + dl + 1);
        if (!t) {
            free(text);
            return false;
        }
        memcpy(t, text, len - 1);
        memcpy(t + len - 1, ",\"data\":", 8);
        memcpy(t + len + 7, e->data_text, dl);
        memcpy(t + len + 7 + dl, "}", 2);
        free(text);
        text = t;
        len = len + 7 + dl + 1;
        free(e->data_text);
        e->data_text = NULL;
    }
    e->text = text;
    e->text_len = len;
    json_decref(e->data);
    e->data = NULL;
    return true;
}

/* Appends events under one lock and wakes the readers once (a loop
 * pass publishes its events together). Takes es[]' contents: the entries the
 * ring drops are swapped into es[] and freed after the lock. Returns the last
 * sequence number. */
static uint64_t append(events_t *ev, entry_t *es, size_t n)
{
    if (!n)
        return 0;
    pthread_mutex_lock(&ev->lock);
    uint64_t seq = 0;
    for (size_t i = 0; i < n; i++) {
        seq = ev->next_seq++;
        entry_t *slot = &ev->ring[seq % ev->cap];
        entry_t old = *slot;
        *slot = es[i];
        es[i] = old;
    }
    atomic_store(&ev->last, seq);
    if (ev->seq_waiters) /* nobody waiting for events (no stream open): no wake-up */
        pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
    for (size_t i = 0; i < n; i++)
        entry_clear(&es[i]);
    return seq;
}

static uint64_t publish_at(events_t *ev, int64_t at_ms, const char *type, int64_t device_id, const char *endpoint,
                           const char *domain, json_t *data)
{
    if (!ev) {
        json_decref(data);
        return 0;
    }
    entry_t e;
    if (!entry_make(&e, at_ms, type, device_id, endpoint, domain, data))
        return 0;
    return append(ev, &e, 1);
}

uint64_t events_publish(events_t *ev, const char *type, int64_t device_id, const char *endpoint, const char *domain,
                        json_t *data)
{
    return publish_at(ev, wall_ms(), type, device_id, endpoint, domain, data);
}

uint64_t events_last_seq(const events_t *ev)
{
    return ev ? atomic_load(&((events_t *)ev)->last) : 0;
}

static bool match(const events_filter_t *f, const entry_t *e)
{
    if (!f)
        return true;
    if (f->ndevices) {
        size_t i = 0;
        while (i < f->ndevices && f->devices[i] != e->device_id)
            i++;
        if (i == f->ndevices || e->device_id == 0)
            return false;
    }
    if (f->ntypes) {
        size_t i = 0;
        while (i < f->ntypes && strcmp(f->types[i], e->type) != 0)
            i++;
        if (i == f->ntypes)
            return false;
    }
    return !f->domain || strncmp(e->domain, f->domain, strlen(f->domain)) == 0;
}

/* First seq to look at for a reader that has seen `after` (under the lock). */
static uint64_t first_seq(const events_t *ev, uint64_t after, bool *missed)
{
    uint64_t oldest = ev->next_seq > ev->cap ? ev->next_seq - ev->cap : 1;
    uint64_t last = ev->next_seq - 1;
    bool gone = false;
    if (after > last) { /* a seq from an earlier run: all we hold is new to it */
        after = 0;
        gone = true;
    }
    if (after + 1 < oldest) { /* the ring dropped some */
        gone = true;
        after = oldest - 1;
    }
    if (missed)
        *missed = gone;
    return after + 1;
}

int events_read(events_t *ev, uint64_t after, const events_filter_t *f, events_item_t *items, size_t max,
                uint64_t *next, bool *missed)
{
    if (missed)
        *missed = false;
    if (!ev) {
        *next = after;
        return 0;
    }
    size_t n = 0;
    pthread_mutex_lock(&ev->lock);
    uint64_t seq = first_seq(ev, after, missed);
    uint64_t last = ev->next_seq - 1;
    uint64_t examined = seq - 1;
    for (; seq <= last && n < max; seq++) {
        const entry_t *e = &ev->ring[seq % ev->cap];
        examined = seq;
        if (!match(f, e))
            continue;
        if (!entry_render((entry_t *)e)) {
            pthread_mutex_unlock(&ev->lock);
            events_items_clear(items, n);
            *next = after;
            return -1;
        }
        char head[40];
        int hl = snprintf(head, sizeof head, "{\"seq\":%llu,", (unsigned long long)seq);
        size_t tail_len = e->text_len - 1;
        char *j = malloc((size_t)hl + tail_len + 1);
        if (!j) {
            pthread_mutex_unlock(&ev->lock);
            events_items_clear(items, n);
            *next = after;
            return -1;
        }
        memcpy(j, head, (size_t)hl);
        memcpy(j + hl, e->text + 1, tail_len + 1);
        items[n].seq = seq;
        memcpy(items[n].type, e->type, sizeof items[n].type);
        items[n].json = j;
        items[n].json_len = (size_t)hl + tail_len;
        n++;
    }
    if (n < max)
        examined = last;
    pthread_mutex_unlock(&ev->lock);
    *next = examined;
    return (int)n;
}

void events_items_clear(events_item_t *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].json);
        items[i].json = NULL;
        items[i].json_len = 0;
    }
}

bool events_pending(events_t *ev, uint64_t after, const events_filter_t *f, uint64_t *scanned)
{
    if (!ev) {
        if (scanned)
            *scanned = after;
        return false;
    }
    bool found = false;
    pthread_mutex_lock(&ev->lock);
    uint64_t seq = first_seq(ev, after, NULL);
    uint64_t last = ev->next_seq - 1;
    for (; seq <= last && !found; seq++)
        found = match(f, &ev->ring[seq % ev->cap]);
    pthread_mutex_unlock(&ev->lock);
    if (scanned)
        *scanned = found ? seq - 1 : last;
    return found;
}

uint64_t events_wake_gen(events_t *ev)
{
    if (!ev)
        return 0;
    pthread_mutex_lock(&ev->lock);
    uint64_t g = ev->wake_gen;
    pthread_mutex_unlock(&ev->lock);
    return g;
}

uint64_t events_wait_from(events_t *ev, uint64_t after, uint64_t gen, int timeout_ms)
{
    if (!ev)
        return 0;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    if (timeout_ms < 0)
        timeout_ms = 0;
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    bool want_events = after != EVENTS_WAKE_ONLY;
    pthread_mutex_lock(&ev->lock);
    ev->seq_waiters += want_events;
    while ((!want_events || ev->next_seq - 1 <= after) && ev->wake_gen == gen)
        if (pthread_cond_timedwait(&ev->cond, &ev->lock, &dl) == ETIMEDOUT)
            break;
    ev->seq_waiters -= want_events;
    uint64_t last = ev->next_seq - 1;
    pthread_mutex_unlock(&ev->lock);
    return last;
}

uint64_t events_wait(events_t *ev, uint64_t after, int timeout_ms)
{
    return events_wait_from(ev, after, events_wake_gen(ev), timeout_ms);
}

void events_wake(events_t *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->wake_gen++;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

/* ------------------------------------------------------------------ batch */
void events_batch_add(events_batch_t *b, const char *type, int64_t device_id, const char *endpoint,
                      const char *domain, json_t *data)
{
    if (!b) {
        json_decref(data);
        return;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        entry_t *es = realloc(b->es, cap * sizeof *es);
        if (!es) {
            json_decref(data);
            return;
        }
        b->es = es;
        b->cap = cap;
    }
    if (entry_make(&b->es[b->n], wall_ms(), type, device_id, endpoint, domain, data))
        b->n++;
}

/* ------------------------------------------------------------ data as text */
static void data_put(events_data_t *d, const char *s, size_t n)
{
    if (d->oom)
        return;
    if (d->n + n + 2 > d->cap) { /* room for the closing brace and the NUL */
        size_t cap = d->cap ? d->cap : 128;
        while (d->n + n + 2 > cap)
            cap *= 2;
        char *ns = realloc(d->s, cap);
        if (!ns) {
            d->oom = true;
            return;
        }
        d->s = ns;
        d->cap = cap;
    }
    memcpy(d->s + d->n, s, n);
    d->n += n;
}

static void data_key(events_data_t *d, const char *key)
{
    data_put(d, d->n ? ",\"" : "{\"", 2);
    data_put(d, key, strlen(key)); /* our own key names: nothing to escape */
    data_put(d, "\":", 2);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && c == 0xe0 && s[1] < 0xa0) || (n == 3 && c == 0xed && s[1] >= 0xa0) || /* overlong, surrogates */
        (n == 4 && c == 0xf0 && s[1] < 0x90) || (n == 4 && c == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

void events_data_str(events_data_t *d, const char *key, const char *value)
{
    data_key(d, key);
    if (!value) {
        data_put(d, "null", 4);
        return;
    }
    data_put(d, "\"", 1);
    const unsigned char *p = (const unsigned char *)value;
    while (*p) {
        const unsigned char *run = p; /* the longest stretch needing no escape */
        while (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
            p++;
        data_put(d, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[8];
        size_t n;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, n = 2, p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p), p++;
        } else if ((n = utf8_len(p)) > 0) {
            data_put(d, (const char *)p, n);
            p += n;
            continue;
        } else {
            memcpy(esc, "\\ufffd", 6), n = 6, p++; /* not UTF-8: the replacement character */
        }
        data_put(d, esc, n);
    }
    data_put(d, "\"", 1);
}

void events_data_int(events_data_t *d, const char *key, long long value)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", value);
    data_key(d, key);
    data_put(d, b, (size_t)n);
}

void events_data_clear(events_data_t *d)
{
    free(d->s);
    memset(d, 0, sizeof *d);
}

void events_batch_add_data(events_batch_t *b, const char *type, int64_t device_id, const char *endpoint,
                           const char *domain, events_data_t *d)
{
    char *text = NULL;
    if (!d->oom) {
        if (!d->n)
            data_put(d, "{", 1);
        data_put(d, "}", 1);
        if (!d->oom) {
            d->s[d->n] = 0;
            text = d->s;
            d->s = NULL;
        }
    }
    events_data_clear(d);
    if (!text)
        return; /* out of memory: the event is lost, as with events_batch_add */
    size_t before = b ? b->n : 0;
    events_batch_add(b, type, device_id, endpoint, domain, NULL);
    if (b && b->n > before)
        b->es[b->n - 1].data_text = text;
    else
        free(text);
}

void events_batch_publish(events_t *ev, events_batch_t *b)
{
    if (!b || !b->n)
        return;
    if (ev) {
        append(ev, b->es, b->n); /* leaves the evicted entries in es[], and frees them */
    } else {
        for (size_t i = 0; i < b->n; i++)
            entry_clear(&b->es[i]);
    }
    b->n = 0;
}

void events_batch_clear(events_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        entry_clear(&b->es[i]);
    free(b->es);
    memset(b, 0, sizeof *b);
}
