#!/usr/bin/env bash
# A throwaway PostgreSQL 15 on 127.0.0.1 under a temp dir (see pipelines/pg_server.py).
#   eval "$(scripts/pg_server.sh start)"   # starts it, exports CONVOPT_PG_HOST/PORT/USER/PASSWORD/DBNAME/DATA
#   scripts/pg_server.sh status
#   scripts/pg_server.sh stop              # stops the server named by $CONVOPT_PG_DATA, removes its dir
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m pipelines.pg_server "$@"
