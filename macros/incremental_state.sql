{#-
    The state of the incremental marts whose own columns cannot say how far their rows are up to date (no
    load-time column of their own, or settings that shape every row): one table, `audit.incremental_state`,
    created by the on-run-start hook. After every build (full or incremental) the model's post-hook
    appends one row per watermark it keeps:

    * `model_name`, `watermark`: the model and the name of the watermark (`loaded_through` for a model
      that keeps one; the parent and column it was taken from for a model that keeps several);
    * `loaded_through`: the largest load (or update) time of that input the model's rows reflect.
      Whatever the input changes later carries a later time (the ingest gives every load a time after
      every earlier load's), so the next run recomputes the rows whose inputs carry a time after it (`>`);
    * `fingerprint`: a hash of what shaped every row (funnel definitions, rules, vars, attribution
      settings). When it differs from the current one, or when nothing was recorded (a table built before
      the model was incremental, a state row lost), the next run recomputes every row: losing the state
      costs one slower run, never a wrong row;
    * `invocation_id`, `recorded_at`: the dbt invocation and the instant of the build.

    The rows of a model's latest `recorded_at` are its state; older rows stay as a history of its builds.

    Two ways of using it:
    * a model that keeps one watermark computes the rows to recompute in its own SQL, from
      `incremental_state_value('loaded_through')` and `incremental_state_is_current(fingerprint)`, and
      records with the post-hook `record_incremental_state` (the funnel marts, the person summary,
      meta_capi_events);
    * a model that keeps several describes itself with a state spec (macros/touched_keys.sql), a mapping of
        unique_key     the list of key columns its delete+insert replaces (a conversion, a period);
        fingerprint    a SQL string expression that changes whenever the settings its rows depend on change;
        watermarks     name -> [relation, column] (or [relation, column, model], see incremental_state_query):
                       for each parent it reads, the column whose largest value tells how far that parent's
                       rows were loaded (or updated);
        touched_keys   a query of the key columns: the keys whose rows may differ from the stored ones,
                       given the previous run's watermarks (`previous_watermark`);
        fingerprints   (optional) name -> a SQL string expression: a further setting recorded with the state
                       (a row of watermark `name`, no loaded_through) that changes only some keys' rows, so
                       touched_keys can compare it with the last run's
                       (`incremental_state_value('fingerprint', watermark=name)`) rather than the change
                       recomputing every row (conversion_attribution: the markov rows' settings);
      its first pre-hook writes the keys of an incremental run to `audit.<model>_touched_keys`, the second
      deletes their rows (so a key left with no row at all disappears), the model inserts the recomputed
      rows and the post-hook `save_incremental_state` records the state (conversion_attribution,
      conversion_metrics, the conversion rollups).
-#}

{#- on-run-start hook (dbt_project.yml): creates schema `audit` and the state table before any model runs
    (models run in parallel; they must not race to create them). Load times are timestamps with time zone
    (type_timestamp_tz). A table of the first layout, without `watermark`, gets the column, filled with
    `loaded_through` (what its rows were); the inserts name their columns, so its column order does not
    matter. Spark has no `add column if not exists`, and no older table to upgrade. -#}
{% macro prepare_incremental_state() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set statements = [
        'create schema if not exists audit',
        'create table if not exists audit.incremental_state ('
        ~ 'model_name ' ~ dbt.type_string()
        ~ ', watermark ' ~ dbt.type_string()
        ~ ', loaded_through ' ~ type_timestamp_tz()
        ~ ', fingerprint ' ~ dbt.type_string()
        ~ ', invocation_id ' ~ dbt.type_string()
        ~ ', recorded_at ' ~ type_timestamp_tz() ~ ')',
    ] -%}
    {%- if target.type != 'spark' -%}
        {%- do statements.append(
            'alter table audit.incremental_state add column if not exists watermark '
            ~ dbt.type_string() ~ " default 'loaded_through'"
        ) -%}
    {%- endif -%}
    {{ return(hook_statements(statements)) }}
{%- endmacro %}

{#- The type of an instant (what the load times are): `timestamp with time zone`; Spark's `timestamp`
    is one (macros/engines/spark.sql). -#}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}
    timestamp with time zone
{%- endmacro %}

{#- The latest state's `column` (`loaded_through` or `fingerprint`) of watermark `watermark` of the model
    named `model_name` (default: the model being built), as a scalar subquery; null when none was
    recorded. -#}
{% macro incremental_state_value(column, model_name=none, watermark='loaded_through') -%}
    {%- set name = model_name or this.identifier -%}
    (
        select max(state.{{ column }})
        from audit.incremental_state as state
        where
            state.model_name = '{{ name }}'
            and state.watermark = '{{ watermark }}'
            and state.recorded_at = (
                select max(latest.recorded_at)
                from audit.incremental_state as latest
                where latest.model_name = '{{ name }}'
            )
    )
{%- endmacro %}

{#- True when the latest state of the model being built has this `fingerprint` (a SQL expression) and a
    `loaded_through` for `watermark`: its rows need recomputing only where their inputs changed since. -#}
{% macro incremental_state_is_current(fingerprint, watermark='loaded_through') -%}
    (
        coalesce({{ incremental_state_value('fingerprint', watermark=watermark) }} = {{ fingerprint }}, false)
        and {{ incremental_state_value('loaded_through', watermark=watermark) }} is not null
    )
{%- endmacro %}

{#- The instant of now as a SQL literal of type_timestamp_tz (one value for every row of a build). -#}
{% macro incremental_state_recorded_at() -%}
    cast(
        '{{ modules.datetime.datetime.now(modules.pytz.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00") }}'
        as {{ type_timestamp_tz() }}
    )
{%- endmacro %}

{#- Post-hook of a model that keeps one watermark: appends its state (`loaded_through` and `fingerprint`
    are SQL expressions, evaluated now, over the inputs the model has just read). `watermarks` (optional,
    name -> SQL expression) records further watermarks with the same fingerprint, one row each, read back
    with `incremental_state_value('loaded_through', watermark=name)`: how far each input was read, when
    the model's inputs are loaded at different times and one `loaded_through` (the earliest) would make
    the next run recompute what the later ones already hold. -#}
{% macro record_incremental_state(loaded_through, fingerprint, watermarks={}) -%}
    {%- set recorded_at = incremental_state_recorded_at() -%}
    insert into audit.incremental_state (model_name, watermark, loaded_through, fingerprint, invocation_id, recorded_at)
    select
        '{{ this.identifier }}',
        'loaded_through',
        {{ loaded_through }},
        {{ fingerprint }},
        '{{ invocation_id }}',
        {{ recorded_at }}
    {%- for name, value in watermarks.items() %}
    union all
    select
        '{{ this.identifier }}',
        '{{ name }}',
        {{ value }},
        {{ fingerprint }},
        '{{ invocation_id }}',
        {{ recorded_at }}
    {%- endfor %}
{%- endmacro %}

{#- audit.<model>_touched_keys of the model being built (none in a unit test, which has no relation). -#}
{% macro touched_keys_relation() -%}
    {%- if this is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set path = {'schema': 'audit', 'identifier': this.identifier ~ '_touched_keys'} -%}
    {#- A Spark relation's database, when set, is its schema. -#}
    {%- if target.type == 'spark' and this.database is not none -%}
        {%- do path.update({'database': 'audit'}) -%}
    {%- endif -%}
    {{ return(this.incorporate(path=path)) }}
{%- endmacro %}

{#-
    True when this run of a model with a state spec can be incremental: the model is built incrementally
    (its table exists, no --full-refresh) and its latest state has the fingerprint the settings have now.
    Runs one query at execution time; false while dbt only parses.
-#}
{% macro incremental_spec_is_current(state) -%}
    {%- set watermark = (state['watermarks'].keys() | list)[0] -%}
    {{ return(incremental_state_is_current_now(state['fingerprint'], watermark)) }}
{%- endmacro %}

{#-
    incremental_state_is_current as a value, read now (one query): true when the model is built
    incrementally (its table exists, no --full-refresh) and its latest state is current. False while dbt
    only parses. A pre-hook that deletes "every row when the state is not current, else the rows of the
    changed keys" can then write one of the two, not an `or` of both: PostgreSQL cannot turn an `in` under
    an `or` into a join, and compares every row with every key once the keys outgrow its hash memory.
-#}
{% macro incremental_state_is_current_now(fingerprint, watermark='loaded_through') -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set query -%}
        select case when {{ incremental_state_is_current(fingerprint, watermark) }} then 1 else 0 end
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0] | int == 1) }}
{%- endmacro %}

{#- The watermark `name` of the latest state of the model being built, as a scalar subquery. -#}
{% macro previous_watermark(name) -%}
    {{ incremental_state_value('loaded_through', watermark=name) }}
{%- endmacro %}

{#-
    Query of a state spec's state rows (watermark, loaded_through, fingerprint): the current fingerprint
    and each parent's largest watermark column (1970 for a parent without rows, so that its first rows
    count as new). A watermark [relation, column, model] is capped by the same watermark recorded by
    `model`, another incremental mart this one reads (when that model has a state): if that mart was left
    behind (built in an earlier invocation than its own parents), the next run here recomputes what it
    has not caught up with yet.
-#}
{% macro incremental_state_query(state) -%}
    {%- set epoch = "cast('1970-01-01 00:00:00+00' as " ~ type_timestamp_tz() ~ ")" -%}
    {%- for name, source in state['watermarks'].items() %}
        {%- if not loop.first %}
    union all
        {%- endif %}
    select
        '{{ name }}' as watermark,
        {%- set largest -%}
            coalesce(cast((select max(parent.{{ source[1] }}) from {{ source[0] }} as parent) as {{ type_timestamp_tz() }}), {{ epoch }})
        {%- endset %}
        {% if source | length > 2 -%}
            least(
                {{ largest }},
                coalesce({{ incremental_state_value('loaded_through', model_name=source[2], watermark=name) }}, {{ largest }})
            )
        {%- else -%}
            {{ largest }}
        {%- endif %} as loaded_through,
        ({{ state['fingerprint'] }}) as fingerprint
    {%- endfor %}
    {%- for name, fingerprint in state.get('fingerprints', {}).items() %}
    union all
    select
        '{{ name }}' as watermark,
        cast(null as {{ type_timestamp_tz() }}) as loaded_through,
        ({{ fingerprint }}) as fingerprint
    {%- endfor %}
{%- endmacro %}

{#- Post-hook of a model with a state spec: appends the state rows of this build. -#}
{% macro save_incremental_state(state) -%}
    insert into audit.incremental_state (model_name, watermark, loaded_through, fingerprint, invocation_id, recorded_at)
    select
        '{{ this.identifier }}',
        spec_state.watermark,
        spec_state.loaded_through,
        spec_state.fingerprint,
        '{{ invocation_id }}',
        {{ incremental_state_recorded_at() }}
    from ({{ incremental_state_query(state) }}) as spec_state
{%- endmacro %}

{#- First pre-hook: on an incremental run, audit.<model>_touched_keys = the keys to recompute; on any
    other run it is dropped (nothing was recomputed key by key). -#}
{% macro write_touched_keys(state) -%}
    {%- set relation = touched_keys_relation() -%}
    {%- set statements = ['drop table if exists ' ~ relation] -%}
    {%- if incremental_spec_is_current(state) -%}
        {%- do statements.append('create table ' ~ relation ~ ' as ' ~ state['touched_keys']) -%}
    {%- endif -%}
    {{ hook_statements(statements) }}
{%- endmacro %}

{#- Second pre-hook: delete the rows of the touched keys (every row when the run cannot be incremental,
    so the model's full recompute replaces the table). Nothing on a first build or full refresh. -#}
{% macro delete_touched_rows(state) -%}
    {%- if execute and is_incremental() -%}
        {%- if incremental_spec_is_current(state) -%}
            {%- set touched = touched_keys_relation() -%}
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
