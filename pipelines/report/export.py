"""Writing one dataset as files: CSV and/or Parquet by DuckDB ``COPY``, each file counted and checksummed.

CSV files have a header, the model's column order and the dataset's row order. Parquet files of a
period dataset are hive-partitioned by ``period_date`` (rows are not ordered within a partition: DuckDB's
partitioned writer does not keep it); the others are one file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.contract import PII_FIELDS
from pipelines.report.datasets import Dataset
from pipelines.report.options import ReportUsageError

# A report never carries personal data in clear (see pipelines.contract.PII_FIELDS), nor the browser
# identifiers Meta's API takes in clear (user agent, the _fbp and _fbc cookies): reports are shared.
PII_COLUMNS = PII_FIELDS | {"client_user_agent", "fbp", "fbc"}


@dataclass
class FileEntry:
    path: str  # relative to the report folder
    format: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class DatasetResult:
    name: str
    source: str
    description: str
    rows: int
    columns: list[dict[str, str]]
    partitioned_by: str | None
    files: list[FileEntry] = field(default_factory=list)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def export_dataset(
    con: duckdb.DuckDBPyConnection, spec: Dataset, query: str, folder: Path, fmt: str
) -> DatasetResult:
    """Write ``query``'s rows under ``folder`` as ``fmt`` (csv, parquet or both); refuse identity fields."""
    relation = con.sql(query)
    columns = [{"name": n, "type": str(t)} for n, t in zip(relation.columns, relation.types, strict=True)]
    clear_pii = sorted(PII_COLUMNS & set(relation.columns))
    if clear_pii:
        raise ReportUsageError(
            f"dataset {spec.name} would export identity fields in clear: {', '.join(clear_pii)}"
        )
    result = DatasetResult(
        spec.name,
        spec.source,
        spec.description,
        0,
        columns,
        "period_date" if spec.partitioned else None,
    )
    rows: int | None = None
    if fmt in ("csv", "both"):
        target = folder / "csv" / f"{spec.name}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        (rows,) = con.execute(
            f"copy ({query}) to '{_sql_path(target)}' "
            "(format csv, header true, timestampformat '%Y-%m-%dT%H:%M:%S.%fZ', dateformat '%Y-%m-%d')"
        ).fetchall()[0]
        result.files.append(
            FileEntry(
                target.relative_to(folder).as_posix(), "csv", rows, target.stat().st_size, _sha256(target)
            )
        )
    if fmt in ("parquet", "both"):
        base = folder / "parquet"
        base.mkdir(parents=True, exist_ok=True)
        if spec.partitioned:
            target = base / spec.name
            (copied,) = con.execute(
                f"copy ({query}) to '{_sql_path(target)}' "
                "(format parquet, compression zstd, partition_by (period_date))"
            ).fetchall()[0]
            files = sorted(target.rglob("*.parquet"))
            counts: dict[str, int] = {}
            if files:
                listing = ", ".join(f"'{_sql_path(f)}'" for f in files)
                counts = dict(
                    con.execute(
                        f"select file_name, num_rows from parquet_file_metadata([{listing}])"
                    ).fetchall()
                )
            for path in files:
                result.files.append(
                    FileEntry(
                        path.relative_to(folder).as_posix(),
                        "parquet",
                        int(counts[str(path)]),
                        path.stat().st_size,
                        _sha256(path),
                    )
                )
        else:
            target = base / f"{spec.name}.parquet"
            (copied,) = con.execute(
                f"copy ({query}) to '{_sql_path(target)}' (format parquet, compression zstd)"
            ).fetchall()[0]
            result.files.append(
                FileEntry(
                    target.relative_to(folder).as_posix(),
                    "parquet",
                    copied,
                    target.stat().st_size,
                    _sha256(target),
                )
            )
        rows = copied if rows is None else rows
    result.rows = int(rows or 0)
    return result
