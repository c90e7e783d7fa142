#!/bin/sh
# Container entrypoint: runs `lwdm ARGS` (default `lwdm serve`) as PID 1, so lwdm
# gets SIGTERM directly and shuts down cleanly. `docker run IMAGE version` etc. work.
set -eu
if [ "${1:-serve}" = serve ] && [ -z "${LWDM_PUBLIC_HOST:-}" ] && [ ! -e "${LWDM_DB:-lwdm.db}" ]; then
    echo "lwdm-entrypoint: LWDM_PUBLIC_HOST is not set; the LwM2M server entries created on this" \
         "first start will point at 127.0.0.1, which devices outside the container cannot reach." \
         "Set LWDM_PUBLIC_HOST to the host name or address devices use." >&2
fi
[ $# -gt 0 ] || set -- serve
exec /usr/local/bin/lwdm "$@"
