#!/bin/sh
# `gateway …` on the PATH: the packaged Node runs the bundled gateway CLI. status and devices find the
# installed gateway through its config unless told otherwise; as root, devices runs as the service user
# so the registry it writes stays the service's.
set -e
NAME=@NAME@
CONFIG=/etc/$NAME/gateway.json
# As the service unit sets it.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
run() { exec /opt/$NAME/bin/node --max-semi-space-size=4 --v8-pool-size=1 /opt/$NAME/lib/gateway.mjs "$@"; }

has_flag() {
  for arg in "$@"; do
    case "$arg" in --config|--config=*|--url|--url=*|--registry|--registry=*|--help|-h) return 0 ;; esac
  done
  return 1
}

case "$1" in
  status)
    has_flag "$@" || set -- "$@" --config "$CONFIG"
    ;;
  devices)
    case "$2" in
      add|list|revoke)
        has_flag "$@" || set -- "$@" --config "$CONFIG"
        if [ "$(id -u)" = 0 ]; then
          exec setpriv --reuid="$NAME" --regid="$NAME" --init-groups -- /opt/$NAME/bin/node --max-semi-space-size=4 --v8-pool-size=1 /opt/$NAME/lib/gateway.mjs "$@"
        fi
        ;;
    esac
    ;;
esac
run "$@"
