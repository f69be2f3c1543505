{#-
    on-run-start hook (dbt_project.yml): creates an empty `raw.adjustments` on DuckDB when the warehouse
    has none yet, so a warehouse from before the adjustments stream existed builds as before (its
    conversions simply have no adjustments) instead of failing on a missing source table. `convopt
    ingest` creates the same table (pipelines/warehouse.py, raw_table_ddl('adjustments'); a test compares
    the two statements). A no-op when the table exists. PostgreSQL gets its raw tables from
    `convopt load-target` and Spark registers them from the DuckDB warehouse, so there is nothing to do
    there.
-#}
{% macro prepare_raw_adjustments() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(adapter.dispatch('prepare_raw_adjustments')()) }}
{%- endmacro %}

{% macro default__prepare_raw_adjustments() -%}
    select 1
{%- endmacro %}

{% macro duckdb__prepare_raw_adjustments() -%}
    create schema if not exists raw;
    create table if not exists raw.adjustments (
        adjustment_id varchar not null,
        conversion_event_id varchar not null,
        conversion_type varchar not null,
        adjustment_type varchar not null,
        amount_cents bigint not null,
        currency varchar not null,
        adjusted_at timestamp with time zone not null,
        reason varchar,
        _load_id varchar not null,
        _source_file varchar not null,
        _source_row bigint not null,
        _loaded_at timestamp with time zone not null
    )
{%- endmacro %}
