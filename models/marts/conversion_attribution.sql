-- One row per conversion × attribution model × credited touchpoint (see the docs block
-- attribution_semantics): the credits of int_attribution_credits applied to the conversion's value in
-- the reporting currency. A table rebuilt on every run from the incremental credits, so a change of
-- exchange rates or of a conversion's value shows at once. Credited values are whole cents: each row
-- gets floor(value × credit) and the cents lost by rounding go to the latest credited touch, so the
-- credited values of one conversion and model add up to exactly its value.
with credits as (
    select * from {{ ref('int_attribution_credits') }}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

valued_credits as (
    select
        credits.*,
        conversions.conversion_type,
        conversions.value_cents_reporting,
        cast(floor(conversions.value_cents_reporting * credits.credit) as {{ dbt.type_bigint() }})
            as rounded_value_cents,
        row_number() over (
            partition by credits.conversion_id, credits.attribution_model
            order by credits.touch_position desc, credits.touchpoint_event_id desc
        ) = 1 as is_latest_credited_touch
    from credits
    inner join conversions
        on credits.conversion_id = conversions.id
),

balanced as (
    select
        valued_credits.*,
        valued_credits.rounded_value_cents + case
            when valued_credits.is_latest_credited_touch
                then
                    valued_credits.value_cents_reporting
                    - sum(valued_credits.rounded_value_cents) over (
                        partition by valued_credits.conversion_id, valued_credits.attribution_model
                    )
            else 0
        end as credited_value_cents
    from valued_credits
),

final as (
    select
        id,
        conversion_id,
        person_id,
        attribution_model,
        touchpoint_event_id,
        campaign_id,
        ad_set_id,
        ad_id,
        conversion_type,
        channel,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        cast('{{ var("reporting_currency", "USD") }}' as {{ dbt.type_string() }}) as reporting_currency,
        touch_position,
        touches_in_path,
        credit,
        value_cents_reporting,
        cast(credited_value_cents as {{ dbt.type_bigint() }}) as credited_value_cents,
        last_click_to_conversion_hours,
        touchpoint_time,
        conversion_time
    from balanced
)

select * from final
