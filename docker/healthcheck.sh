#!/bin/bash
# HEALTHCHECK of the lwdm image: GET /healthz on lwdm's HTTP port, healthy on 200.
# The port comes from LWDM_HTTP (default 0.0.0.0:8080); plain bash, no curl needed.
addr=${LWDM_HTTP:-0.0.0.0:8080}
port=${addr##*:}
host=${addr%:*}
host=${host#[}; host=${host%]}
case $host in ""|0.0.0.0|::) host=127.0.0.1 ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$host" >&3 || exit 1
IFS= read -r -t 3 status <&3 || exit 1
case $status in
    "HTTP/1."?" 200"*) exit 0 ;;
esac
echo "unhealthy: ${status%$'\r'}" >&2
exit 1
