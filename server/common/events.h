/* Live events: an in-process bus owned by the server (docs/management.md
 * "Events"). Publishers (the network loop, HTTP threads) append events to a
 * ring of the last `capacity` events; readers (the REST API: SSE streams and
 * JSON long polls) read what follows a sequence number, filtered, and may
 * block until more arrives.
 *
 * Contract:
 *   - Every function is thread-safe. events_publish() takes one mutex for a
 *     few pointer moves and never does I/O; the event's JSON text is rendered
 *     once, by the first reader that reads it, and cached. A published `data`
 *     object must not be modified afterwards (another thread renders it).
 *   - Sequence numbers start at 1 and increase by 1 per published event, in
 *     ring order: a reader that has seen seq N has seen every event <= N that
 *     matched its filter (unless the ring dropped it, which it is told).
 *   - The ring keeps the newest `capacity` events; older ones are gone.
 *   - Non-blocking consumers (the API's SSE connections) are served by one
 *     thread of theirs that blocks in events_wait() and wakes the connections
 *     whose filter matches (api/events.c); publishers never call out.
 *
 * The text of an event (SSE `data:` line, JSON page item):
 *   {"seq":N,"type":"...","time":"2026-11-22T10:00:00.000Z","deviceId":7|null,
 *    "endpoint":"..."|null,"domain":"/...","data":{...}}                       */
#ifndef LWDM_COMMON_EVENTS_H
#define LWDM_COMMON_EVENTS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_DEFAULT_CAPACITY 10000
#define EVENTS_TYPE_MAX 32 /* type names are shorter (with the NUL) */

typedef struct events events_t;

/* A bus keeping the last `capacity` events (0 = EVENTS_DEFAULT_CAPACITY).
 * NULL on ENOMEM. */
events_t *events_new(size_t capacity);
/* Frees the bus and its events; *ev becomes NULL. Nobody may use it or wait
 * on it any more. */
void events_free(events_t **ev);

/* Appends an event and wakes the waiters. `type` is required (1..31
 * characters); `device_id` <= 0 means "no device" (deviceId null);
 * `endpoint` may be NULL; `domain` NULL means "/" (only root users see it).
 * Takes ownership of `data` (may be NULL: rendered as {}), even on failure.
 * Returns the event's seq, or 0 if it could not be published (ev NULL, bad
 * type, ENOMEM). Callable from any thread. */
uint64_t events_publish(events_t *ev, const char *type, int64_t device_id, const char *endpoint, const char *domain,
                        json_t *data);

/* The newest event's seq (0 when none yet). Lock-free. */
uint64_t events_last_seq(const events_t *ev);

/* Which events a reader wants. Empty lists mean "any"; `domain` is a domain
 * path prefix ("/acme/" matches "/acme/" and "/acme/plant1/"), NULL = any.
 * The arrays are borrowed for the call. */
typedef struct {
    const int64_t *devices;
    size_t ndevices;
    const char *const *types;
    size_t ntypes;
    const char *domain;
} events_filter_t;

typedef struct {
    uint64_t seq;
    char type[EVENTS_TYPE_MAX];
    char *json;                   /* the event's text (malloc'd, NUL-terminated) */
    size_t json_len;
} events_item_t;

/* Copies into items[0..max) the events with seq > after that match f (NULL =
 * all), oldest first, and returns how many (-1 on ENOMEM: nothing copied).
 * *next is what to pass as `after` next time: the seq of the last event
 * examined (the last copied one when max was reached, else the newest).
 * *missed (may be NULL) is set when events after `after` already left the
 * ring; the read then starts at the oldest event still held. An `after`
 * beyond the newest seq (a seq from an earlier run of the process) is read
 * as 0, also with *missed set. Free the items' texts with events_items_clear. */
int events_read(events_t *ev, uint64_t after, const events_filter_t *f, events_item_t *items, size_t max,
                uint64_t *next, bool *missed);
void events_items_clear(events_item_t *items, size_t n);

/* true if some event with seq > after matches f; *scanned (may be NULL) is
 * set to the newest seq examined, so a caller can resume the check there.
 * Copies nothing. */
bool events_pending(events_t *ev, uint64_t after, const events_filter_t *f, uint64_t *scanned);

/* Blocks until an event with seq > after exists, events_wake() is called, or
 * timeout_ms (>= 0) passes; returns the newest seq. */
uint64_t events_wait(events_t *ev, uint64_t after, int timeout_ms);
/* events_wait() for a thread that must not miss an events_wake() made after
 * it read `gen` with events_wake_gen(). after == EVENTS_WAKE_ONLY: new events
 * do not end the wait (only events_wake() or the timeout do), and publishing
 * then costs no wake-up at all. */
#define EVENTS_WAKE_ONLY UINT64_MAX
uint64_t events_wake_gen(events_t *ev);
uint64_t events_wait_from(events_t *ev, uint64_t after, uint64_t gen, int timeout_ms);
/* Makes every current events_wait() return (used to stop a waiting thread). */
void events_wake(events_t *ev);

/* Events held back by a publisher until its transaction is committed (so a
 * reader that reacts to an event finds its state in the database). Owned by
 * one thread; zero-initialised = empty. The time of each event is taken when
 * it is added. */
struct events_entry;
typedef struct {
    struct events_entry *es;
    size_t n, cap;
} events_batch_t;

/* Same arguments as events_publish (takes `data`). */
void events_batch_add(events_batch_t *b, const char *type, int64_t device_id, const char *endpoint,
                      const char *domain, json_t *data);
/* An event's data built directly as JSON text, for publishers on hot paths
 * (no jansson object to build and free per event). Zero-initialised =
 * empty; keys are the caller's own names (not escaped); string values are
 * escaped, with invalid UTF-8 as U+FFFD and NULL as null. */
typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} events_data_t;
void events_data_str(events_data_t *d, const char *key, const char *value);
void events_data_int(events_data_t *d, const char *key, long long value);
void events_data_clear(events_data_t *d);
/* events_batch_add with that data ({} when empty); takes it (d is empty after). */
void events_batch_add_data(events_batch_t *b, const char *type, int64_t device_id, const char *endpoint,
                           const char *domain, events_data_t *d);
/* Publishes the held events in order (ev NULL: drops them); b is empty after. */
void events_batch_publish(events_t *ev, events_batch_t *b);
/* Drops the held events and frees b's storage. */
void events_batch_clear(events_batch_t *b);

#endif
