{#-
    on-run-start hook (dbt_project.yml): makes sure `raw.meta_delivery_log` exists with every column
    before anything reads it, exactly as `convopt export-meta` prepares it before its first request
    (and `convopt ingest` / `convopt load-target` create it with the other raw tables).

    Why here and not a fallback in the staging model: stg_meta_delivery_log and
    int_meta_delivery_state are views, so a delivery recorded after the build is seen by the next
    export at once. A view standing in for a missing table would keep showing no deliveries after
    the export created the table, and the next export would send everything again. Creating the
    empty table keeps the views live from the first build, and lets the source tests and the unit
    tests that describe the log find its columns.

    * table missing: `create schema if not exists raw` and the table, with the columns and not-null
      constraints of pipelines/warehouse.py (META_DELIVERY_LOG_DDL; a test compares the two);
    * table present: the columns newer than the table (run_id, is_retryable, as_of on a log written
      before they existed) are added, nullable, as export-meta adds them; nothing otherwise.
    Every statement is a no-op when the table is already as it should be.

    DuckDB and PostgreSQL share the default version. On Spark the raw tables are registered from the
    DuckDB warehouse (pipelines/engines/spark.py), which refuses a warehouse without the log, so there
    is nothing to prepare.
-#}
{% macro prepare_meta_delivery_log() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(adapter.dispatch('prepare_meta_delivery_log')()) }}
{%- endmacro %}

{#-
    (name, kind, not null, added later) of every column of raw.meta_delivery_log, in the loader's order.
    "Added later": not in the first version of the log, so an older log gets it (nullable), as
    `convopt export-meta` adds it (ADDED_LOG_COLUMNS in the export).
-#}
{% macro meta_delivery_log_columns() -%}
    {{ return([
        ('conversion_id', 'string', true, false),
        ('event_id', 'string', true, false),
        ('pixel_id', 'string', false, false),
        ('batch_id', 'string', true, false),
        ('attempt', 'integer', true, false),
        ('status', 'string', true, false),
        ('events_received', 'integer', false, false),
        ('fbtrace_id', 'string', false, false),
        ('error_type', 'string', false, false),
        ('error_code', 'integer', false, false),
        ('error_subcode', 'integer', false, false),
        ('error_message', 'string', false, false),
        ('http_status', 'integer', false, false),
        ('test_event_code', 'string', false, false),
        ('requested_at', 'timestamp', false, false),
        ('recorded_at', 'timestamp', true, false),
        ('run_id', 'string', false, true),
        ('is_retryable', 'boolean', false, true),
        ('as_of', 'timestamp', false, true),
    ]) }}
{%- endmacro %}

{% macro default__prepare_meta_delivery_log() -%}
    {%- set types = {
        'string': dbt.type_string(),
        'integer': dbt.type_int(),
        'boolean': dbt.type_boolean(),
        'timestamp': 'timestamp with time zone',
    } -%}
    {%- set definitions = [] -%}
    {%- set added = [] -%}
    {%- for name, kind, not_null, is_added_later in meta_delivery_log_columns() -%}
        {%- do definitions.append(name ~ ' ' ~ types[kind] ~ (' not null' if not_null else '')) -%}
        {%- if is_added_later -%}
            {%- do added.append(
                'alter table raw.meta_delivery_log add column if not exists ' ~ name ~ ' ' ~ types[kind]
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {#- Statements that change nothing when the table is as it should be, rather than a look at the
        catalog first: dbt runs the hook in the transaction such a look opens, and rolls it back. -#}
    {{ return(hook_statements(
        [
            'create schema if not exists raw',
            'create table if not exists raw.meta_delivery_log (\n    ' ~ definitions | join(',\n    ') ~ '\n)',
        ] + added
    )) }}
{%- endmacro %}

{% macro spark__prepare_meta_delivery_log() -%}
    {{ return('') }}
{%- endmacro %}
