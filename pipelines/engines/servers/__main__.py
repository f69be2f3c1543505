"""`python -m pipelines.engines.servers postgres|spark start|status|stop` (see the package docstring)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.engines.servers",
        description="Start, check or stop a throwaway PostgreSQL server or Spark cluster on 127.0.0.1.",
    )
    engines = parser.add_subparsers(dest="engine", required=True, metavar="{postgres,spark}")

    postgres = engines.add_parser("postgres", help="a PostgreSQL server in a new temporary directory")
    actions = postgres.add_subparsers(dest="action", required=True, metavar="{start,status,stop}")
    start = actions.add_parser("start", help="start it; prints `export CONVOPT_PG_…` lines")
    start.add_argument("--port", type=int, help="port (default: a free one)")
    start.add_argument(
        "--dir", type=Path, help="folder to create the server's directory in (default: $TMPDIR)"
    )
    for name, text in (("status", "is it running?"), ("stop", "stop it and remove its directory")):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "data_dir", nargs="?", type=Path, help="the server's directory (default: $CONVOPT_PG_DATA)"
        )

    spark = engines.add_parser("spark", help="a Spark standalone cluster with its Thrift server")
    spark.add_argument(
        "action",
        choices=("start", "status", "stop"),
        help="start prints `export CONVOPT_SPARK_…` lines; state in $CONVOPT_SPARK_DIR",
    )
    return parser


def _postgres(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from pipelines.engines.servers import postgres

    try:
        if args.action == "start":
            server = postgres.start(base_dir=args.dir, port=args.port)
            for key, value in server.env.items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"PostgreSQL started on {server.host}:{server.port} in {server.data_dir}", file=sys.stderr)
            return 0
        data_dir = args.data_dir or (
            Path(os.environ["CONVOPT_PG_DATA"]) if os.environ.get("CONVOPT_PG_DATA") else None
        )
        if data_dir is None:
            parser.error(f"postgres {args.action}: give the server's directory or set CONVOPT_PG_DATA")
        if args.action == "status":
            text = postgres.status(data_dir)
            print(text)
            return 0 if text.startswith("running") else 1
        postgres.stop(data_dir)
        print(f"PostgreSQL in {data_dir} stopped and removed", file=sys.stderr)
        return 0
    except postgres.PgServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.engine == "postgres":
        return _postgres(args, parser)
    from pipelines.engines.servers import spark

    return spark.run(args.action, capture=False, timeout=None).returncode


if __name__ == "__main__":
    raise SystemExit(main())
