{%- set state = conversion_rollup_incremental_state('week') -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='period_date',
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(conversion_rollup_incremental_state('week')) }}",
            "{{ delete_touched_rows(conversion_rollup_incremental_state('week')) }}",
        ],
        post_hook="{{ save_incremental_state(conversion_rollup_incremental_state('week')) }}",
    )
}}
{%- set touched_periods = touched_keys_relation() if incremental_spec_is_current(state) else none %}

-- Weekly conversion rollup (ISO weeks starting Monday, reporting time zone): additive measures summed
-- from conversion_rollup_daily, distinct persons counted from the conversions (macros/conversion_rollup.sql).
-- Incremental by week (delete+insert on period_date), by the rules of conversion_rollup_daily at
-- week grain: a week is touched when it holds a copy of a conversion key loaded since the last run, or
-- the earliest unchanged conversion of a person and type with an earlier changed copy. The daily rollup
-- it sums is brought up to date earlier in the same build.
{{ conversion_rollup_from_daily('weekly', 'week', touched_periods) }}
