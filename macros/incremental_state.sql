{#-
    What an incremental mart remembers between runs when its own columns hold no load time to take a
    watermark from (conversion_attribution, conversion_metrics, the conversion rollups: their columns are
    fixed). Such a model describes itself with a state spec (macros/touched_keys.sql), a mapping of
      unique_key     the list of key columns its delete+insert replaces (a conversion, a period);
      fingerprint    a SQL expression worth a string that changes whenever the settings its rows depend
                     on change (seeds, vars, the attribution settings its parents were computed with);
      watermarks     name -> [relation, column] (or [relation, column, model], see
                     incremental_state_query): for each parent it reads, the column whose largest value
                     tells how far that parent's rows were loaded (or updated);
      touched_keys   a query of the key columns: the keys whose rows may differ from the stored ones,
                     given the watermarks of the previous run (`previous_watermark`);
    and keeps two tables in schema `audit` (created by the on-run-start hook):
      audit.<model>_incremental_state  one row written by the post-hook after every build (full or
                     incremental): the fingerprint and every watermark, read by the next run;
      audit.<model>_touched_keys       written by the first pre-hook of an incremental run: the keys
                     the run recomputes. The second pre-hook deletes their rows, so a key left with no
                     row at all (a conversion merged into another, a period whose only rows moved to
                     another period) disappears; the model then inserts the recomputed rows.
    A run is incremental only when the model's table exists and its state row has the current
    fingerprint; otherwise (first run after an upgrade, a changed seed or var, a lost state row) the
    model recomputes every row, as a full refresh would.
-#}

{#- audit.<model>_<suffix> of the model being built (none in a unit test, which has no relation), or of
    the model named `model_name`. -#}
{% macro incremental_state_relation(suffix, model_name=none) -%}
    {%- if this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set path = {'schema': 'audit', 'identifier': (model_name or this.identifier) ~ '_' ~ suffix} -%}
    {#- A Spark relation's database, when set, is its schema. -#}
    {%- if target.type == 'spark' and this.database is not none -%}
        {%- do path.update({'database': 'audit'}) -%}
    {%- endif -%}
    {{ return(this.incorporate(path=path)) }}
{%- endmacro %}

{#- on-run-start: the schema of the incremental state tables and of the build log exists before any model
    runs (models run in parallel; they must not race to create it). -#}
{% macro create_audit_schema() -%}
    create schema if not exists audit
{%- endmacro %}

{#-
    True when this run can be incremental: the model is built incrementally (its table exists, no
    --full-refresh) and the state its previous run saved has the fingerprint the settings have now.
    Runs one query at execution time; false while dbt only parses.
-#}
{% macro incremental_state_is_current(state) -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set relation = incremental_state_relation('incremental_state') -%}
    {%- if adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select count(*) as matching_rows
        from {{ relation }} as previous_state
        where previous_state.fingerprint = ({{ state['fingerprint'] }})
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int == 1) }}
{%- endmacro %}

{#- The watermark `name` the previous run saved, as a scalar subquery (a timestamp). -#}
{% macro previous_watermark(name) -%}
    (select previous_state.{{ name }} from {{ incremental_state_relation('incremental_state') }} as previous_state)
{%- endmacro %}

{#-
    Query of the state row: the current fingerprint and each parent's largest watermark column (1970 for
    a parent without rows, so that its first rows count as new). A watermark [relation, column, model]
    is capped by the same watermark saved by `model`, another incremental mart this one reads (when that
    model's state exists): if that mart was left behind (built in an earlier invocation than its own
    parents), the next run here recomputes what it has not caught up with yet.
-#}
{% macro incremental_state_query(state) -%}
    {%- set epoch = "cast('1970-01-01 00:00:00+00' as " ~ dbt.type_timestamp() ~ ")" -%}
    select
        ({{ state['fingerprint'] }}) as fingerprint
        {%- for name, source in state['watermarks'].items() %},
        {%- set largest -%}
            coalesce((select max(parent.{{ source[1] }}) from {{ source[0] }} as parent), {{ epoch }})
        {%- endset -%}
        {%- set capping = none -%}
        {%- if source | length > 2 and execute -%}
            {%- set candidate = incremental_state_relation('incremental_state', source[2]) -%}
            {%- if adapter.get_relation(candidate.database, candidate.schema, candidate.identifier) is not none -%}
                {%- set capping = candidate -%}
            {%- endif -%}
        {%- endif %}
        {% if capping is not none -%}
            least(
                {{ largest }},
                coalesce((select capping.{{ name }} from {{ capping }} as capping), {{ epoch }})
            )
        {%- else -%}
            {{ largest }}
        {%- endif %} as {{ name }}
        {%- endfor %}
{%- endmacro %}

{#- Post-hook: replace the model's state row with the one of this build. -#}
{% macro save_incremental_state(state) -%}
    {%- set relation = incremental_state_relation('incremental_state') -%}
    {{ hook_statements([
        'drop table if exists ' ~ relation,
        'create table ' ~ relation ~ ' as ' ~ incremental_state_query(state),
    ]) }}
{%- endmacro %}

{#- First pre-hook: on an incremental run, audit.<model>_touched_keys = the keys to recompute; on any
    other run it is dropped (nothing was recomputed key by key). -#}
{% macro write_touched_keys(state) -%}
    {%- set relation = incremental_state_relation('touched_keys') -%}
    {%- set statements = ['drop table if exists ' ~ relation] -%}
    {%- if incremental_state_is_current(state) -%}
        {%- do statements.append('create table ' ~ relation ~ ' as ' ~ state['touched_keys']) -%}
    {%- endif -%}
    {{ hook_statements(statements) }}
{%- endmacro %}

{#- Second pre-hook: delete the rows of the touched keys (every row when the run cannot be incremental,
    so the model's full recompute replaces the table). Nothing on a first build or full refresh. -#}
{% macro delete_touched_rows(state) -%}
    {%- if execute and is_incremental() -%}
        {%- if incremental_state_is_current(state) -%}
            {%- set touched = incremental_state_relation('touched_keys') -%}
            {%- set matches = [] -%}
            {%- for column in state['unique_key'] -%}
                {%- do matches.append('touched.' ~ column ~ ' = target_rows.' ~ column) -%}
            {%- endfor -%}
            {{ delete_rows_where(
                this,
                'exists (select 1 from ' ~ touched ~ ' as touched where ' ~ matches | join(' and ') ~ ')'
            ) }}
        {%- else -%}
            {{ delete_rows_where(this, '1 = 1') }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- DELETE … WHERE `condition` as one statement (a hook); `condition` names the relation's rows
    `target_rows` and is never null (an EXISTS, NOT EXISTS or a constant). Spark's Parquet tables have
    no DELETE (spark__delete_rows_where in macros/engines/spark.sql). -#}
{% macro delete_rows_where(relation, condition) -%}
    {{ return(adapter.dispatch('delete_rows_where')(relation, condition)) }}
{%- endmacro %}

{% macro default__delete_rows_where(relation, condition) -%}
    delete from {{ relation }} as target_rows where {{ condition }}
{%- endmacro %}
