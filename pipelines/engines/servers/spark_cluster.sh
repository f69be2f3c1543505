#!/usr/bin/env bash
# A Spark standalone cluster on loopback for the `spark` dbt target: one master, one worker and the
# Spark Thrift server (HiveServer2 protocol, what dbt-spark's `method: thrift` talks to), all from the
# pyspark package of the `.[spark]` extra (SPARK_HOME = the pyspark package folder) and Java 17.
#
#   eval "$(python -m pipelines.engines.servers spark start)"   # prints `export ...` lines
#   python -m pipelines.engines.servers spark status   # exit 0 when master, worker and Thrift server all run
#   python -m pipelines.engines.servers spark stop     # stops the three processes by pid; keeps the state folder
# (the module runs this script; running it directly with start|status|stop does the same).
#
# Everything the cluster writes (logs, pid files, worker and scratch folders, the Derby metastore
# metastore_db/ and derby.log, the managed-table warehouse spark-warehouse/) lives in the state folder
# $CONVOPT_SPARK_DIR (default: $TMPDIR/convopt-spark-$USER), never in the working directory. Tables
# survive a stop/start with the same folder; delete the folder to start from scratch.
#
# Settings (environment): CONVOPT_SPARK_DIR, CONVOPT_SPARK_WORKER_MEMORY (3g), CONVOPT_SPARK_WORKER_CORES
# (2), CONVOPT_SPARK_DRIVER_MEMORY (6g, the Thrift server's driver, which builds the broadcast side of
# joins and runs the iterations of a recursive CTE: with 512m a relationships test failed at 1M
# events, with 2g int_funnel_attempt_matches on 60 persons), CONVOPT_SPARK_EXECUTOR_MEMORY (2g),
# CONVOPT_SPARK_START_TIMEOUT (180 s), PYTHON (an interpreter with pyspark), SPARK_HOME.
set -euo pipefail

# This script lives in pipelines/engines/servers/ of the repository.
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
STATE_DIR="${CONVOPT_SPARK_DIR:-${TMPDIR:-/tmp}/convopt-spark-$(id -un)}"
[[ "$STATE_DIR" == /* ]] || STATE_DIR="$PWD/$STATE_DIR"
WORKER_MEMORY="${CONVOPT_SPARK_WORKER_MEMORY:-3g}"
WORKER_CORES="${CONVOPT_SPARK_WORKER_CORES:-2}"
DRIVER_MEMORY="${CONVOPT_SPARK_DRIVER_MEMORY:-6g}"
EXECUTOR_MEMORY="${CONVOPT_SPARK_EXECUTOR_MEMORY:-2g}"
START_TIMEOUT="${CONVOPT_SPARK_START_TIMEOUT:-180}"
ROLES=(master worker thrift)
HOST=127.0.0.1

log() { echo "spark_cluster: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" "$REPO_DIR/.venv/bin/python" "$(command -v python3 || true)"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" -c 'import pyspark' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

find_spark_home() {
    if [[ -n "${SPARK_HOME:-}" ]]; then
        echo "$SPARK_HOME"
        return 0
    fi
    local python
    python="$(find_python)" ||
        die "no Python with pyspark found (tried \$PYTHON, $REPO_DIR/.venv/bin/python, python3): pip install -e '.[spark]'"
    "$python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'
}

# Free TCP ports on loopback, one per argument name, printed as NAME=PORT lines.
free_ports() {
    local python
    python="$(find_python || command -v python3)"
    "$python" - "$@" <<'EOF'
import socket, sys
sockets = []
for name in sys.argv[1:]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
    print(f"{name}={s.getsockname()[1]}")
for s in sockets:
    s.close()
EOF
}

pid_of() { cat "$STATE_DIR/run/$1.pid" 2>/dev/null || true; }

# A pid file's process is ours only if it is alive and its command line names this state folder
# (guards against a recycled pid after a reboot or a crash).
is_running() {
    local pid
    pid="$(pid_of "$1")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE_DIR"
}

port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

wait_for_port() { # role port what
    local role="$1" port="$2" what="$3" waited=0
    until port_open "$port"; do
        kill -0 "$(pid_of "$role")" 2>/dev/null || die "$what exited during start-up; see $STATE_DIR/logs/$role.log"
        ((waited >= START_TIMEOUT)) && die "$what did not open port $port within ${START_TIMEOUT}s; see $STATE_DIR/logs/$role.log"
        sleep 1
        waited=$((waited + 1))
    done
}

print_env() {
    # shellcheck disable=SC1091
    source "$STATE_DIR/run/ports.env"
    cat <<EOF
export CONVOPT_SPARK_HOST=$HOST
export CONVOPT_SPARK_PORT=$THRIFT_PORT
export CONVOPT_SPARK_MASTER=spark://$HOST:$MASTER_PORT
export CONVOPT_SPARK_DIR=$STATE_DIR
EOF
}

start() {
    local running=0 role
    for role in "${ROLES[@]}"; do is_running "$role" && running=$((running + 1)); done
    if ((running == ${#ROLES[@]})); then
        log "already running (state in $STATE_DIR)"
        print_env
        return 0
    fi
    ((running > 0)) && die "partly running; stop it first (python -m pipelines.engines.servers spark stop; state in $STATE_DIR)"
    command -v java >/dev/null || die "java not found on PATH (Spark 4 needs Java 17 or 21)"

    local spark_home
    spark_home="$(find_spark_home)"
    [[ -x "$spark_home/bin/spark-class" ]] || die "SPARK_HOME=$spark_home has no bin/spark-class"
    mkdir -p "$STATE_DIR"/{logs,run,work,local,conf}
    free_ports MASTER_PORT MASTER_UI_PORT WORKER_PORT WORKER_UI_PORT THRIFT_PORT >"$STATE_DIR/run/ports.env"
    # shellcheck disable=SC1091
    source "$STATE_DIR/run/ports.env"

    export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=$HOST SPARK_LOCAL_DIRS="$STATE_DIR/local"
    export SPARK_CONF_DIR="$STATE_DIR/conf" SPARK_LOG_DIR="$STATE_DIR/logs" SPARK_WORKER_DIR="$STATE_DIR/work"
    export SPARK_PID_DIR="$STATE_DIR/run" PYSPARK_PYTHON="$(find_python || command -v python3)"
    # -Dconvopt.spark.dir tags each JVM's command line with the state folder (see is_running).
    local tag="-Dconvopt.spark.dir=$STATE_DIR"
    export SPARK_DAEMON_JAVA_OPTS="$tag" SPARK_DAEMON_MEMORY="${CONVOPT_SPARK_DAEMON_MEMORY:-512m}"

    cd "$STATE_DIR" # anything a JVM still writes to its working directory lands here
    log "starting master on $HOST:$MASTER_PORT (state in $STATE_DIR)"
    nohup "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
        --host $HOST --port "$MASTER_PORT" --webui-port "$MASTER_UI_PORT" \
        >"$STATE_DIR/logs/master.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/run/master.pid"
    wait_for_port master "$MASTER_PORT" "master"

    log "starting worker ($WORKER_CORES cores, $WORKER_MEMORY)"
    nohup "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker "spark://$HOST:$MASTER_PORT" \
        --host $HOST --port "$WORKER_PORT" --webui-port "$WORKER_UI_PORT" \
        --cores "$WORKER_CORES" --memory "$WORKER_MEMORY" --work-dir "$STATE_DIR/work" \
        >"$STATE_DIR/logs/worker.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/run/worker.pid"
    wait_for_port worker "$WORKER_PORT" "worker"

    log "starting Thrift server on $HOST:$THRIFT_PORT (ready after about 25 s)"
    # For the Thrift server spark-submit's launcher takes the driver heap from SPARK_DAEMON_MEMORY
    # before --driver-memory (SparkSubmitCommandBuilder), so the daemons' 512m would win.
    SPARK_DAEMON_MEMORY="$DRIVER_MEMORY" nohup "$spark_home/bin/spark-submit" \
        --master "spark://$HOST:$MASTER_PORT" \
        --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
        --name convopt-thrift \
        --driver-memory "$DRIVER_MEMORY" \
        --driver-java-options "$tag -Dderby.system.home=$STATE_DIR" \
        --executor-memory "$EXECUTOR_MEMORY" \
        --conf spark.ui.enabled=false \
        --conf spark.driver.host=$HOST \
        --conf spark.driver.bindAddress=$HOST \
        --conf spark.sql.session.timeZone=UTC \
        --conf "spark.sql.warehouse.dir=$STATE_DIR/spark-warehouse" \
        --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$STATE_DIR/metastore_db;create=true" \
        --hiveconf hive.server2.thrift.port="$THRIFT_PORT" \
        --hiveconf hive.server2.thrift.bind.host=$HOST \
        spark-internal \
        >"$STATE_DIR/logs/thrift.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/run/thrift.pid"
    wait_for_port thrift "$THRIFT_PORT" "Thrift server"
    log "ready; export these (or eval this command's output):"
    print_env
}

stop_role() {
    local role="$1" pid waited=0
    pid="$(pid_of "$role")"
    if ! is_running "$role"; then
        rm -f "$STATE_DIR/run/$role.pid"
        return 0
    fi
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= 30)); then
            log "$role (pid $pid) ignored SIGTERM for 30 s; killing it"
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 1
        waited=$((waited + 1))
    done
    rm -f "$STATE_DIR/run/$role.pid"
    log "stopped $role (pid $pid)"
}

stop() {
    [[ -d "$STATE_DIR/run" ]] || {
        log "nothing to stop ($STATE_DIR/run does not exist)"
        return 0
    }
    # Thrift server first (its application ends and the worker's executor exits), then worker, master.
    stop_role thrift
    stop_role worker
    stop_role master
    log "state kept in $STATE_DIR (tables, metastore, logs); delete it to start from scratch"
}

status() {
    local role rc=0
    for role in "${ROLES[@]}"; do
        if is_running "$role"; then
            echo "$role: running (pid $(pid_of "$role"))"
        else
            echo "$role: stopped"
            rc=1
        fi
    done
    if ((rc == 0)); then
        print_env
    fi
    return $rc
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: spark_cluster.sh start|stop|status   (state folder: $STATE_DIR)" >&2
    exit 2
    ;;
esac
