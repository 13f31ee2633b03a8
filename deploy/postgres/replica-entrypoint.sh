#!/bin/bash
# A hot standby: on first start, copy the primary with pg_basebackup (-R writes
# standby.signal and primary_conninfo), then replay its WAL stream for ever.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  export PGPASSWORD="$REPLICATION_PASSWORD"
  until pg_basebackup --host "$PRIMARY_HOST" --username replicator --pgdata "$PGDATA" \
      --wal-method stream --write-recovery-conf --progress; do
    echo "waiting for the primary…"; sleep 2; rm -rf "${PGDATA:?}"/*
  done
fi
exec postgres -c hot_standby=on -c max_connections="${POSTGRES_MAX_CONNECTIONS:-300}"
