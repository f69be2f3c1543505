"""`convopt report`: marts and report models as CSV and Parquet files, charts and one HTML page, in a dated folder.

Layout of one report (``<out>/<period>_<since>_<until>/``)::

    manifest.json                    every file, its rows, columns (+ DuckDB types) and the dbt build read
    index.html                       self-contained page: headline numbers and the charts (base64 PNGs)
    csv/<dataset>.csv                header, stable column order (the mart's), deterministic row order
                                     (Parquet rows are not ordered within a partition: DuckDB's partitioned
                                     writer does not keep it)
    parquet/<dataset>/period_date=YYYY-MM-DD/data_0.parquet   hive-partitioned by period (DuckDB COPY)
    parquet/<dataset>.parquet        datasets without a period (person summary, Meta delivery status)
    charts/*.png

The modules, one job each:

    options      the options (period, format, days), their checks, and the range of whole periods
    datasets     which dbt model each dataset reads and the select of the range's rows
    build_log    the warehouse's tables and the dbt build recorded in audit.dbt_build_log
    export       one dataset as CSV/Parquet files by DuckDB COPY, counted and checksummed
    figures      headline numbers and the small tables the charts draw
    charts       the PNG charts (matplotlib)
    page         manifest.json and index.html
    folders      the finished folder replaces the previous report at once; ``<out>/latest``
    write        write_report: all of the above in order

Days are days in the reporting time zone the marts were built with (recorded in ``audit.dbt_build_log``).
"""

from pipelines.report.build_log import BUILD_LOG, latest_build
from pipelines.report.datasets import REPORT_MODELS, Dataset, datasets
from pipelines.report.export import PII_COLUMNS, DatasetResult, FileEntry
from pipelines.report.options import (
    DEFAULT_OUT,
    FORMATS,
    PERIODS,
    ReportRange,
    ReportUsageError,
    parse_date,
    resolve_range,
    validate_options,
)
from pipelines.report.write import ReportResult, write_report

__all__ = [
    "BUILD_LOG",
    "DEFAULT_OUT",
    "FORMATS",
    "PERIODS",
    "PII_COLUMNS",
    "REPORT_MODELS",
    "Dataset",
    "DatasetResult",
    "FileEntry",
    "ReportRange",
    "ReportResult",
    "ReportUsageError",
    "datasets",
    "latest_build",
    "parse_date",
    "resolve_range",
    "validate_options",
    "write_report",
]
