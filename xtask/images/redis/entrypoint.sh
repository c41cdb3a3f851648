#!/bin/sh
# Runs redis-server in the foreground as PID 1 (so `docker stop` reaches it),
# listening on every address, without persistence; extra arguments are passed on
# (a leading `redis-server`, as the official image takes, is dropped).
set -e
if [ "${1:-}" = redis-server ]; then shift; fi
exec redis-server --bind 0.0.0.0 --protected-mode no --port 6379 \
  --save '' --appendonly no --logfile '' --dir /tmp "$@"
