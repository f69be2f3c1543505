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

{#- (name, kind, not null) of every column of raw.meta_delivery_log, in the loader's order. -#}
{% macro meta_delivery_log_columns() -%}
    {{ return([
        ('conversion_id', 'string', true),
        ('event_id', 'string', true),
        ('pixel_id', 'string', false),
        ('batch_id', 'string', true),
        ('attempt', 'integer', true),
        ('status', 'string', true),
        ('events_received', 'integer', false),
        ('fbtrace_id', 'string', false),
        ('error_type', 'string', false),
        ('error_code', 'integer', false),
        ('error_subcode', 'integer', false),
        ('error_message', 'string', false),
        ('http_status', 'integer', false),
        ('test_event_code', 'string', false),
        ('requested_at', 'timestamp', false),
        ('recorded_at', 'timestamp', true),
        ('run_id', 'string', false),
        ('is_retryable', 'boolean', false),
        ('as_of', 'timestamp', false),
    ]) }}
{%- endmacro %}

{% macro default__prepare_meta_delivery_log() -%}
    {%- set types = {
        'string': dbt.type_string(),
        'integer': dbt.type_int(),
        'boolean': dbt.type_boolean(),
        'timestamp': 'timestamp with time zone',
    } -%}
    {%- set existing = adapter.get_relation(
        database=target.database, schema='raw', identifier='meta_delivery_log'
    ) -%}
    {%- set statements = [] -%}
    {%- if existing is none -%}
        {%- set definitions = [] -%}
        {%- for name, kind, not_null in meta_delivery_log_columns() -%}
            {%- do definitions.append(name ~ ' ' ~ types[kind] ~ (' not null' if not_null else '')) -%}
        {%- endfor -%}
        {%- do statements.append('create schema if not exists raw') -%}
        {%- do statements.append(
            'create table if not exists raw.meta_delivery_log (\n    '
            ~ definitions | join(',\n    ') ~ '\n)'
        ) -%}
    {%- else -%}
        {%- set present = [] -%}
        {%- for column in adapter.get_columns_in_relation(existing) -%}
            {%- do present.append(column.name | lower) -%}
        {%- endfor -%}
        {%- for name, kind, not_null in meta_delivery_log_columns() if name not in present -%}
            {%- if not_null -%}
                {{ exceptions.raise_compiler_error(
                    "raw.meta_delivery_log has no column " ~ name ~ ", which every version of the log "
                    ~ "has had: the table is not the delivery log `convopt export-meta` writes") }}
            {%- endif -%}
            {%- do statements.append(
                'alter table raw.meta_delivery_log add column ' ~ name ~ ' ' ~ types[kind]
            ) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(hook_statements(statements)) }}
{%- endmacro %}

{% macro spark__prepare_meta_delivery_log() -%}
    {{ return('') }}
{%- endmacro %}
