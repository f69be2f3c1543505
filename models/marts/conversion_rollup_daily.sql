{%- set state = conversion_rollup_incremental_state('day') -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='period_date',
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(conversion_rollup_incremental_state('day')) }}",
            "{{ delete_touched_rows(conversion_rollup_incremental_state('day')) }}",
        ],
        post_hook="{{ save_incremental_state(conversion_rollup_incremental_state('day')) }}",
    )
}}
{%- set touched_periods = touched_keys_relation() if incremental_spec_is_current(state) else none %}

-- Daily conversion rollup (see the docs block conversion_rollups and macros/conversion_rollup.sql):
-- conversions, revenue in the reporting currency, average value, persons converting, new and repeat
-- customers per day (reporting time zone) × conversion_type × campaign × ad set × channel × utm_source
-- × device_type × country, as the conversions themselves report their campaign and tags.
--
-- Incremental by day (delete+insert on period_date; the docs block conversion_rollups_incremental): a
-- run recomputes every row of each touched day. A row depends on the conversions of its day (their
-- dimensions, value and person) and on each person's first conversion of the type (new vs repeat), so
-- a day is touched (macros/touched_keys.sql, changed_conversion_instants) when it holds
-- * a copy of a conversion key with a conversion loaded since the last run (conversion_event
--   last_loaded_at; every copy of the key: a late copy can move, split or remove a conversion, and its
--   old and new conversion_time are both copy times), or
-- * the earliest unchanged conversion of a person and type that has an earlier changed copy: the only
--   unchanged day whose new/repeat status can flip.
-- "Since" is strictly after the recorded watermark (conversions loaded at it are the latest load the
-- previous run already counted), so a run with nothing new touches no day.
-- The pre-hook empties the touched days first, so a day left without conversions disappears. Nothing
-- depends on the current time. Every day is recomputed when the channel mapping or var
-- `reporting_timezone` or `reporting_currency` changed (the fingerprint in
-- audit.incremental_state, macros/incremental_state.sql), and on the first run
-- without saved state. A changed exchange-rate seed needs --full-refresh, as for conversion_event.
with {{ conversion_rollup_inputs('day', touched_periods) }},

facts as (
    {{ conversion_rollup_facts('day') }}
),

measures as (
    select
        period_date,
        {{ conversion_rollup_dimensions() }},
        count(*) as conversions,
        {{ conversion_rollup_money_measures() }},
        {{ conversion_rollup_person_measures() }}
    from facts
    group by
        period_date,
        {{ conversion_rollup_dimensions() }}
),

final as (
    {{ conversion_rollup_final('daily', 'measures') }}
)

select * from final
