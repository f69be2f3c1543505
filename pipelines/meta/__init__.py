"""Exactly-once delivery of ``marts.meta_capi_events`` to Meta's Conversions API (``convopt export-meta``).

One module per job: ``export`` runs an export from start to end; ``selection`` picks the rows a run handles;
``batching`` cuts them into request bodies; ``sender`` sends them and logs each outcome; ``dry_run`` writes
the bodies instead; ``graph_client`` talks to the Graph API; ``delivery_log`` owns ``raw.meta_delivery_log``
and the in-flight journal; ``results`` holds the run summary and the usage error. The names below are the
public API, importable from this package.
"""

from pipelines.meta.batching import (
    MAX_EVENTS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    body_overhead_bytes,
    build_request_body,
    plan_batches,
)
from pipelines.meta.delivery_log import delivery_state_relation, inflight_journal_path
from pipelines.meta.dry_run import (
    DEFAULT_DRY_RUN_DIR,
    DRY_RUN_DIR_ENV,
    DRY_RUN_EVENTS_FILE,
    DRY_RUN_REQUESTS_FILE,
    dry_run_dir,
)
from pipelines.meta.export import (
    API_VERSION_ENV,
    GRAPH_BASE_URL_ENV,
    NO_TOKEN_MESSAGE,
    TEST_EVENT_CODE_ENV,
    TOKEN_ENV,
    export_meta,
)
from pipelines.meta.graph_client import (
    DEFAULT_API_VERSION,
    DEFAULT_GRAPH_BASE_URL,
    DEFAULT_TIMEOUT,
    GraphClient,
    GraphResponse,
    Outcome,
    RetryPolicy,
    classify_response,
)
from pipelines.meta.results import ExportSummary, ExportUsageError

__all__ = [
    "API_VERSION_ENV",
    "DEFAULT_API_VERSION",
    "DEFAULT_DRY_RUN_DIR",
    "DEFAULT_GRAPH_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DRY_RUN_DIR_ENV",
    "DRY_RUN_EVENTS_FILE",
    "DRY_RUN_REQUESTS_FILE",
    "GRAPH_BASE_URL_ENV",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_REQUEST_BYTES",
    "NO_TOKEN_MESSAGE",
    "TEST_EVENT_CODE_ENV",
    "TOKEN_ENV",
    "ExportSummary",
    "ExportUsageError",
    "GraphClient",
    "GraphResponse",
    "Outcome",
    "RetryPolicy",
    "body_overhead_bytes",
    "build_request_body",
    "classify_response",
    "delivery_state_relation",
    "dry_run_dir",
    "export_meta",
    "inflight_journal_path",
    "plan_batches",
]
