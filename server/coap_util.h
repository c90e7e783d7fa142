/* CoAP helpers shared by the bootstrap and registration interfaces (loop
 * thread only): raw Uri-Query access, error replies, requests to devices. */
#ifndef LWDM_COAP_UTIL_H
#define LWDM_COAP_UTIL_H
#include <coap3/coap.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/lwm2m/lwm2m.h"

/* Makes libcoap take its random bytes from libsodium through a pool instead
 * of a system call each (after coap_startup()). */
void cu_install_prng(void);

/* true when the session came in on local port `port` (0 never matches). */
bool cu_is_local_port(coap_session_t *cs, uint16_t port);

/* true for DTLS and TLS sessions (a PSK identity was checked in the handshake). */
bool cu_is_secure(coap_session_t *cs);
/* true for CoAP over TCP or TLS (RFC 8323): no message types, no message ids
 * (every received PDU has type CON and id 0), no retransmissions. */
bool cu_is_reliable(coap_session_t *cs);
/* "udp", "dtls", "tcp" or "tls" */
const char *cu_proto_name(coap_session_t *cs);

/* Value of the Uri-Query option `key=...`, from the raw option bytes:
 * libcoap's joined query string percent-escapes them and joins options with
 * '&', so "ep=a&b" in one option would read as "a" (an identity confusion).
 * A value with a NUL byte, or longer than cap-1, is found with *bad set. */
void cu_query_get(const coap_pdu_t *req, const char *key, char *out, size_t cap, bool *found, bool *bad);
/* true when a Uri-Query option is exactly `key` (a valueless flag such as Q)
 * or `key=` anything. */
bool cu_query_has(const coap_pdu_t *req, const char *key);

/* An endpoint name we accept: 1..max-1 bytes, printable, no spaces. */
bool cu_valid_endpoint(const char *ep, size_t max);

/* Sets the response code (cls.detail), counts it and adds msg as diagnostic payload. */
void cu_reply_error(coap_pdu_t *resp, int cls, int detail, const char *msg);

/* Content-Format (or Accept, with opt = COAP_OPTION_ACCEPT) of a PDU, or LWM2M_CF_NONE. */
int cu_pdu_uint_option(const coap_pdu_t *pdu, uint16_t opt, int none);

/* "ip:port" of the session's peer. */
void cu_peer_str(coap_session_t *cs, char *buf, size_t cap);

/* A request to a device on its session. `root` is an alternate path prefix
 * ("" or "/lwm2m"), `path` may be NULL (root). cf/accept LWM2M_CF_NONE when
 * absent; observe -1 (none), 0 (register) or 1 (deregister); query is a list
 * of '&'-separated Uri-Query options or NULL. The payload is copied (large
 * payloads go block-wise). The token is 8 bytes. Returns the message id or
 * COAP_INVALID_MID. */
/* The token and options of such a request (what cu_send_request adds before
 * the payload), for a PDU sent by other means (lwdm's own UDP endpoint).
 * false when one does not fit. */
bool cu_request_options(coap_pdu_t *pdu, const char *root, const lwm2m_path_t *path, int cf, int accept, int observe,
                        const char *query, bool has_payload, const uint8_t token[8]);
coap_mid_t cu_send_request(coap_session_t *cs, int method, const char *root, const lwm2m_path_t *path, int cf,
                           int accept, int observe, const char *query, const uint8_t *payload, size_t len,
                           const uint8_t token[8]);

#endif
