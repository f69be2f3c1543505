{%- set state = conversion_rollup_incremental_state('month') -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='period_date',
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(conversion_rollup_incremental_state('month')) }}",
            "{{ delete_touched_rows(conversion_rollup_incremental_state('month')) }}",
        ],
        post_hook="{{ save_incremental_state(conversion_rollup_incremental_state('month')) }}",
    )
}}
{%- set touched_periods = touched_keys_relation() if incremental_spec_is_current(state) else none %}

-- Monthly conversion rollup (calendar months, reporting time zone): additive measures summed from
-- conversion_rollup_daily, distinct persons counted from the conversions (macros/conversion_rollup.sql).
-- Incremental by month (delete+insert on period_date), by the rules of conversion_rollup_daily at
-- month grain: a month is touched when it holds a copy of a conversion key loaded since the last run, or
-- the earliest unchanged conversion of a person and type with an earlier changed copy. The daily rollup
-- it sums is brought up to date earlier in the same build.
{{ conversion_rollup_from_daily('monthly', 'month', touched_periods) }}
