-- The rollups count every conversion exactly once. Per conversion_type × campaign, the daily, weekly
-- and monthly rollups' conversions and revenue equal conversion_event's; and every week (month) of the
-- weekly (monthly) rollup equals the sum of its days in the daily rollup. Returns the differences.
with conversions as (
    select * from {{ ref('conversion_event') }}
),

daily as (
    select * from {{ ref('conversion_rollup_daily') }}
),

weekly as (
    select * from {{ ref('conversion_rollup_weekly') }}
),

monthly as (
    select * from {{ ref('conversion_rollup_monthly') }}
),

totals as (
    select
        'conversion_event' as counted_in,
        conversion_type,
        coalesce(campaign_id, '(unattributed)') as campaign_id,
        value_cents_reporting as revenue_cents,
        1 as conversions
    from conversions
    {%- for rollup in ['daily', 'weekly', 'monthly'] %}
        union all
        select
            '{{ rollup }}' as counted_in,
            conversion_type,
            campaign_id,
            revenue_cents,
            conversions
        from {{ rollup }}
    {%- endfor %}
),

totals_compared as (
    select
        conversion_type,
        campaign_id,
        sum(case when counted_in = 'conversion_event' then conversions else 0 end) as conversion_event_conversions,
        sum(case when counted_in = 'conversion_event' then revenue_cents else 0 end) as conversion_event_revenue_cents,
        sum(case when counted_in = 'daily' then conversions else 0 end) as daily_conversions,
        sum(case when counted_in = 'daily' then revenue_cents else 0 end) as daily_revenue_cents,
        sum(case when counted_in = 'weekly' then conversions else 0 end) as weekly_conversions,
        sum(case when counted_in = 'weekly' then revenue_cents else 0 end) as weekly_revenue_cents,
        sum(case when counted_in = 'monthly' then conversions else 0 end) as monthly_conversions,
        sum(case when counted_in = 'monthly' then revenue_cents else 0 end) as monthly_revenue_cents
    from totals
    group by
        conversion_type,
        campaign_id
),

-- Daily rows summed to their week (month), minus the weekly (monthly) rows: 0 when they agree.
period_differences as (
    {%- for rollup, grain in [('weekly', 'week'), ('monthly', 'month')] %}
        select
            '{{ rollup }}' as counted_in,
            cast({{ dbt.date_trunc(grain, 'period_date') }} as date) as period_date,
            conversion_type,
            campaign_id,
            conversions,
            revenue_cents
        from daily
        union all
        select
            '{{ rollup }}' as counted_in,
            period_date,
            conversion_type,
            campaign_id,
            -conversions as conversions,
            -revenue_cents as revenue_cents
        from {{ rollup }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

periods_compared as (
    select
        counted_in,
        period_date,
        conversion_type,
        campaign_id,
        sum(conversions) as conversions_difference,
        sum(revenue_cents) as revenue_difference
    from period_differences
    group by
        counted_in,
        period_date,
        conversion_type,
        campaign_id
),

failures as (
    select
        'totals' as check_name,
        cast(null as date) as period_date,
        conversion_type,
        campaign_id
    from totals_compared
    where
        daily_conversions <> conversion_event_conversions
        or weekly_conversions <> conversion_event_conversions
        or monthly_conversions <> conversion_event_conversions
        or daily_revenue_cents <> conversion_event_revenue_cents
        or weekly_revenue_cents <> conversion_event_revenue_cents
        or monthly_revenue_cents <> conversion_event_revenue_cents
    union all
    select
        counted_in as check_name,
        period_date,
        conversion_type,
        campaign_id
    from periods_compared
    where conversions_difference <> 0 or revenue_difference <> 0
)

select * from failures
