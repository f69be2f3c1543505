{#-
    The incremental state of a model whose own columns cannot say how far its rows are up to date (no
    load-time column of its own, or settings that shape every row). After each build the model's
    post-hook appends one row to `audit.incremental_state`:

    * `loaded_through`: the latest load time of its inputs that its rows reflect. Whatever its inputs
      change later carries a later load time, so the next run recomputes the rows whose inputs carry a
      load time at or after it (`>=`: a load committed at that same instant is read again, harmlessly).
    * `fingerprint`: a hash of what shaped every row (funnel definitions, vars). When it differs from
      the current one, or when nothing was recorded (a table built before the model was incremental,
      or an input without a state of its own), the next run recomputes every row.

    The latest row of a model is its state; older rows stay as a history of its builds.
-#}

{#- on-run-start hook (dbt_project.yml): creates the state table before any model reads it. Load times
    are timestamps with time zone (type_timestamp_tz). -#}
{% macro prepare_incremental_state() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(hook_statements([
        'create schema if not exists audit',
        'create table if not exists audit.incremental_state ('
        ~ 'model_name ' ~ dbt.type_string()
        ~ ', loaded_through ' ~ type_timestamp_tz()
        ~ ', fingerprint ' ~ dbt.type_string()
        ~ ', invocation_id ' ~ dbt.type_string()
        ~ ', recorded_at ' ~ type_timestamp_tz() ~ ')',
    ])) }}
{%- endmacro %}

{#- The type of an instant (what the load times are): `timestamp with time zone`; Spark's `timestamp`
    is one (macros/engines/spark.sql). -#}
{% macro type_timestamp_tz() -%}
    {{ return(adapter.dispatch('type_timestamp_tz')()) }}
{%- endmacro %}

{% macro default__type_timestamp_tz() -%}
    timestamp with time zone
{%- endmacro %}

{#- The latest state row's `column` for the model named `model_name` (default: the model being built). -#}
{% macro incremental_state_value(column, model_name=none) -%}
    {%- set name = model_name or this.identifier -%}
    (
        select max(state.{{ column }})
        from audit.incremental_state as state
        where
            state.model_name = '{{ name }}'
            and state.recorded_at = (
                select max(latest.recorded_at)
                from audit.incremental_state as latest
                where latest.model_name = '{{ name }}'
            )
    )
{%- endmacro %}

{#- True when the latest state of the model being built has this `fingerprint` (a SQL expression) and a
    `loaded_through`: its rows need recomputing only where their inputs changed since. -#}
{% macro incremental_state_is_current(fingerprint) -%}
    (
        coalesce({{ incremental_state_value('fingerprint') }} = {{ fingerprint }}, false)
        and {{ incremental_state_value('loaded_through') }} is not null
    )
{%- endmacro %}

{#- Post-hook: appends the state of the model just built (`loaded_through` and `fingerprint` are SQL
    expressions, evaluated now, over the inputs the model has just read). -#}
{% macro record_incremental_state(loaded_through, fingerprint) -%}
    insert into audit.incremental_state
    select
        '{{ this.identifier }}',
        {{ loaded_through }},
        {{ fingerprint }},
        '{{ invocation_id }}',
        cast(
            '{{ modules.datetime.datetime.now(modules.pytz.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00:00") }}'
            as {{ type_timestamp_tz() }}
        )
{%- endmacro %}
