{#-
    on-run-start hook (dbt_project.yml): creates an empty `raw.identities` on DuckDB when the warehouse
    has none yet, so a warehouse from before the identities stream existed builds as before (no
    anonymous id is linked to a person) instead of failing on a missing source table. `convopt ingest`
    creates the same table (pipelines/warehouse.py, raw_table_ddl('identities'); a test compares the two
    statements). A no-op when the table exists. PostgreSQL gets its raw tables from `convopt
    load-target` and Spark registers them from the DuckDB warehouse, so there is nothing to do there.
-#}
{% macro prepare_raw_identities() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(adapter.dispatch('prepare_raw_identities')()) }}
{%- endmacro %}

{% macro default__prepare_raw_identities() -%}
    select 1
{%- endmacro %}

{% macro duckdb__prepare_raw_identities() -%}
    create schema if not exists raw;
    create table if not exists raw.identities (
        anonymous_id varchar not null,
        person_id varchar not null,
        observed_at timestamp with time zone not null,
        source varchar,
        _load_id varchar not null,
        _source_file varchar not null,
        _source_row bigint not null,
        _loaded_at timestamp with time zone not null
    )
{%- endmacro %}
