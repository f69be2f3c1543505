{#-
    A checkpoint for an incremental model whose columns are a contract and so cannot carry its own load
    watermark (as conversion_event's last_loaded_at does): one row in the table
    audit.<model>_checkpoint with `loaded_at` (the newest load the build had read) and `settings_hash`
    (what the model's rows were computed with: seeds and vars). A post-hook of every build of the model
    rewrites it; the next incremental run reads it. A missing checkpoint (a model that has just become
    incremental, or a table dropped by hand) reads as no row, and the model then recomputes every row:
    losing it costs one slower run, never a wrong row.
-#}

{% macro incremental_checkpoint_relation(model_relation) -%}
    {{ return(api.Relation.create(
        database=model_relation.database,
        schema='audit',
        identifier=model_relation.identifier ~ '_checkpoint',
        type='table',
    )) }}
{%- endmacro %}

{#- Query of the model's checkpoint: loaded_at, settings_hash; no row when none was recorded yet. -#}
{% macro incremental_checkpoint(model_relation) -%}
    {%- set relation = incremental_checkpoint_relation(model_relation) -%}
    {%- set recorded = adapter.get_relation(relation.database, relation.schema, relation.identifier)
        if execute else none -%}
    {%- if recorded is not none -%}
        select
            recorded_checkpoint.loaded_at,
            recorded_checkpoint.settings_hash
        from {{ recorded }} as recorded_checkpoint
    {%- else -%}
        select
            cast(null as {{ dbt.type_timestamp() }}) as loaded_at,
            cast(null as {{ dbt.type_string() }}) as settings_hash
        where 1 = 0
    {%- endif -%}
{%- endmacro %}

{#-
    Post-hook: replace the model's checkpoint with one row computed now, after the model's rows are
    written (inside the model's transaction on DuckDB and PostgreSQL). Drop and create rather than
    delete and insert: the table takes the types of the values (a DuckDB timestamptz stays one), and
    Spark's Parquet tables have no DELETE.
-#}
{% macro record_incremental_checkpoint(model_relation, loaded_at_query, settings_hash_query) -%}
    {%- set relation = incremental_checkpoint_relation(model_relation) -%}
    {%- set create_table -%}
        create table {{ relation }} as
        select
            ({{ loaded_at_query }}) as loaded_at,
            ({{ settings_hash_query }}) as settings_hash
    {%- endset -%}
    {{ hook_statements([
        'create schema if not exists ' ~ relation.schema,
        'drop table if exists ' ~ relation,
        create_table,
    ]) }}
{%- endmacro %}
