#!/usr/bin/env bash
# A small supervisor for hosts without systemd (the network-namespace
# rehearsal): runs a command, restarts it one second after it exits, and
# stops it on SIGTERM. The role scripts start it with setsid and keep its
# pid in a file.
#
#   deploy/supervise.sh LOG_FILE COMMAND [ARGS...]
set -u
log=$1; shift
cd / # as under systemd: nothing depends on where the role script ran

child=
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; wait; exit 0' TERM INT
while true; do
    "$@" >>"$log" 2>&1 &
    child=$!
    wait "$child"
    echo "[supervise] $(date +%T) exited with $?; restarting in 1 s" >>"$log"
    sleep 1
done
