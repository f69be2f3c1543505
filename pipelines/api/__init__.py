"""The conversions API: the feature document's service calls as Python functions (this package) and
over HTTP (``convopt serve``, :mod:`pipelines.api.server`).

``service`` holds the functions, ``collect`` validates and lands posted rows, ``landing`` owns the
API's landing files, ``snapshot`` publishes and opens the read-only copy of the marts the reads answer
from, ``reads`` the reading helpers. Importing this package does not import the web framework.
"""

from pipelines.api.collect import MAX_BATCH_ROWS, MAX_BODY_BYTES, Collector, RowOutcome, conversion_id
from pipelines.api.reads import Answer, ApiUsageError, BusyError, NotFoundError
from pipelines.api.service import (
    ApiContext,
    create_optimization_rule,
    get_conversion_event,
    get_conversion_metrics,
    get_conversion_summary,
    get_funnel_stats,
    get_funnel_steps,
    get_funnels_by_person,
    list_conversions,
    list_optimization_rules,
    open_api,
    optimize_batch_conversions,
    optimize_conversion_for_meta,
    track_conversion_event,
    track_events,
)
from pipelines.api.snapshot import BuildInfo, SnapshotError, publish_snapshot, snapshot_path

__all__ = [
    "MAX_BATCH_ROWS",
    "MAX_BODY_BYTES",
    "Answer",
    "ApiContext",
    "ApiUsageError",
    "BuildInfo",
    "BusyError",
    "Collector",
    "NotFoundError",
    "RowOutcome",
    "SnapshotError",
    "conversion_id",
    "create_optimization_rule",
    "get_conversion_event",
    "get_conversion_metrics",
    "get_conversion_summary",
    "get_funnel_stats",
    "get_funnel_steps",
    "get_funnels_by_person",
    "list_conversions",
    "list_optimization_rules",
    "open_api",
    "optimize_batch_conversions",
    "optimize_conversion_for_meta",
    "publish_snapshot",
    "snapshot_path",
    "track_conversion_event",
    "track_events",
]
