/* First start: the admin user and the default configuration, as DESIGN.md
 * "First run" describes. Runs once per database (guarded by the kv key
 * "first_run_done"); entries an operator deleted are never re-added. */
#ifndef LWDM_FIRSTRUN_H
#define LWDM_FIRSTRUN_H
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"
#include "server/config.h"

typedef struct {
    const char *public_host;
    uint16_t coap_port, coaps_port, bs_coap_port, bs_coaps_port;
    const char *admin_password;   /* "" = generate one */
} firstrun_params_t;

/* Creates user admin if there is no user (password from params, else a
 * generated one copied to gen_pw, which is "" otherwise), and on the very first
 * start the four server entries and the bootstrap settings. One transaction.
 * Returns 0, or -1 with err. *seeded says whether defaults were created now. */
int firstrun_apply(db_t *db, const firstrun_params_t *p, char *gen_pw, size_t gen_pw_cap, int *seeded, char *err,
                   size_t errlen);

#endif
