#!/usr/bin/env bash
# A loopback redis-server for tests and CI (SPEC §12, docs/limits.md).
#   install  installs the Debian package redis-server if the binary is missing (needs root; one apt-get update)
#   start    starts one on 127.0.0.1:${REDIS_TEST_PORT:-6399}, no persistence, in .tmp/redis-test/; prints its URL
#   stop     stops the one `start` started
# The test files that need Redis (test/limits-redis.test.ts) start and stop their own server through
# test/support/redis.ts (they stop and restart it mid-test), so CI only needs `install`; `start`/`stop` are for
# tests that want one shared server via REDIS_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tmp/redis-test
port="${REDIS_TEST_PORT:-6399}"

case "${1:-}" in
  install)
    if ! command -v redis-server >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
    fi
    # The Debian package may start a system service on 6379; the tests never use it, and stopping it is the
    # operator's choice, so it is left alone.
    redis-server --version
    ;;
  start)
    mkdir -p "$dir"
    if [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      echo "redis-test-server already running (pid $(cat "$dir/pid"))" >&2
      exit 1
    fi
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$PWD/$dir" \
      --daemonize yes --pidfile "$PWD/$dir/pid" --logfile "$PWD/$dir/redis.log"
    for _ in $(seq 1 100); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        echo "REDIS_URL=redis://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.1
    done
    echo "redis-server did not answer on $port (see $dir/redis.log)" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid="$(cat "$dir/pid")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$dir/pid"
    fi
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
