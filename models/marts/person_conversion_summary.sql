{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='person_id',
        on_schema_change='fail',
        pre_hook=[
            "{% if is_incremental() %}{{ delete_rows_where(this, person_summary_outdated_persons()) }}{% endif %}",
            "{% if is_incremental() %}{{ delete_rows_where(this, stitched_away_persons(since=incremental_state_value('loaded_through'))) }}{% endif %}",
        ],
        post_hook="{{ record_incremental_state(person_summary_loaded_through(), person_summary_fingerprint(), person_summary_watermarks()) }}",
    )
}}

-- depends_on: {{ ref('int_identity_map') }}
-- depends_on: {{ ref('int_identity_previous_persons') }}
-- depends_on: {{ ref('int_identity_observations') }}
-- depends_on: {{ ref('int_events_deduplicated') }}
-- depends_on: {{ ref('int_conversions_deduplicated') }}

-- depends_on: {{ ref('int_conversion_identities') }}
-- depends_on: {{ ref('int_funnel_steps_matched') }}

-- One row per person with a conversion or a funnel row (the feature document's getConversionSummary): conversions
-- by type, revenue in the reporting currency, first/last conversion, funnels entered and converted.
-- Identity fields are not carried: person_id is the producer's id, there is no clear PII here.
--
-- Incremental, by person: the pre-hook deletes the rows of the persons that may have changed since the
-- last run (macros/person_summary_outdated_persons.sql: a conversion of theirs, or one that was
-- theirs, got a copy; or their funnel matching changed), or every row when the funnel definitions,
-- conversion_funnel's own recomputation or var reporting_currency changed. This model then computes the
-- persons with conversions or funnel rows and no row here. A person left with neither keeps no row.
with all_conversions as (
    select * from {{ ref('conversion_event') }}
),

all_funnels as (
    select * from {{ ref('conversion_funnel') }}
),

{% if is_incremental() -%}
    stored_persons as (
        select stored.person_id
        from {{ this }} as stored
    ),

    conversions as (
        select all_conversions.*
        from all_conversions
        left join stored_persons
            on all_conversions.person_id = stored_persons.person_id
        where stored_persons.person_id is null
    ),

    funnels as (
        select all_funnels.*
        from all_funnels
        left join stored_persons
            on all_funnels.person_id = stored_persons.person_id
        where stored_persons.person_id is null
    ),
{%- else -%}
    conversions as (
        select * from all_conversions
    ),

    funnels as (
        select * from all_funnels
    ),
{%- endif %}

conversion_totals as (
    select
        person_id,
        count(*) as total_conversions,
        sum(case when conversion_type = 'purchase' then 1 else 0 end) as purchases,
        sum(case when conversion_type = 'signup' then 1 else 0 end) as signups,
        sum(case when conversion_type = 'video_render' then 1 else 0 end) as video_renders,
        sum(case when conversion_type = 'subscription' then 1 else 0 end) as subscriptions,
        sum(value_cents_reporting) as known_revenue_cents,
        sum(case when value_cents_reporting is null then 1 else 0 end) as conversions_without_reporting_value,
        min(conversion_time) as first_conversion_at,
        max(conversion_time) as last_conversion_at
    from conversions
    group by person_id
),

funnel_totals as (
    select
        person_id,
        count(*) as funnels_entered,
        sum(case when is_converted then 1 else 0 end) as funnels_converted
    from funnels
    -- A person excluded from a funnel (an exclusion step) has left it.
    where not is_excluded
    group by person_id
),

persons as (
    select person_id from conversion_totals
    union
    select person_id from funnel_totals
),

final as (
    select
        persons.person_id,
        '{{ var("reporting_currency", "USD") }}' as reporting_currency,
        cast(coalesce(conversion_totals.total_conversions, 0) as {{ dbt.type_bigint() }}) as total_conversions,
        cast(coalesce(conversion_totals.purchases, 0) as {{ dbt.type_bigint() }}) as purchases,
        cast(coalesce(conversion_totals.signups, 0) as {{ dbt.type_bigint() }}) as signups,
        cast(coalesce(conversion_totals.video_renders, 0) as {{ dbt.type_bigint() }}) as video_renders,
        cast(coalesce(conversion_totals.subscriptions, 0) as {{ dbt.type_bigint() }}) as subscriptions,
        -- Never a partial sum: null when a conversion of the person has no reporting-currency value.
        cast(
            case
                when conversion_totals.person_id is null then 0
                when conversion_totals.conversions_without_reporting_value = 0
                    then coalesce(conversion_totals.known_revenue_cents, 0)
            end as {{ dbt.type_bigint() }}
        ) as total_revenue_cents,
        cast(
            coalesce(conversion_totals.conversions_without_reporting_value, 0) as {{ dbt.type_bigint() }}
        ) as conversions_without_reporting_value,
        cast(coalesce(funnel_totals.funnels_entered, 0) as {{ dbt.type_bigint() }}) as funnels_entered,
        cast(coalesce(funnel_totals.funnels_converted, 0) as {{ dbt.type_bigint() }}) as funnels_converted,
        coalesce(conversion_totals.purchases, 0) >= 2 as is_repeat_purchaser,
        conversion_totals.first_conversion_at,
        conversion_totals.last_conversion_at
    from persons
    left join conversion_totals
        on persons.person_id = conversion_totals.person_id
    left join funnel_totals
        on persons.person_id = funnel_totals.person_id
)

select * from final
