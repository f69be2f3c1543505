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
{%- set touched_periods = incremental_state_relation('touched_keys') if incremental_state_is_current(state) else none %}

-- Daily conversion rollup (see the docs block conversion_rollups and macros/conversion_rollup.sql):
-- conversions, revenue in the reporting currency, average value, persons converting, new and repeat
-- customers per day (reporting time zone) × conversion_type × campaign × ad set × channel × utm_source
-- × device_type × country, as the conversions themselves report their campaign and tags.
-- Incremental by day: see the docs block conversion_rollups_incremental.
with {{ conversion_rollup_inputs('day', touched_periods) }},

facts as (
    {{ conversion_rollup_facts('day') }}
),

measures as (
    select
        period_date,
        {{ conversion_rollup_dimensions() }},
        count(*) as conversions,
        sum(value_cents_reporting) as revenue_cents,
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
