-- The rollups count every conversion exactly once. Per conversion_type × campaign, the daily, weekly
-- and monthly rollups' conversions and revenue (gross, and net of refunds) equal conversion_event's;
-- and every week (month) of the weekly (monthly) rollup equals the sum of its days in the daily rollup.
-- Returns the differences.
--
-- On an incremental build both checks are limited to the periods this run may have changed (test_scope,
-- macros/test_scope.sql): the days, weeks and months of the conversions whose keys were rewritten and
-- of every day up to var dedup_window_hours later (every copy of a key lies within the window after the
-- time of the conversion it belongs to, so this covers the period a conversion left when a late copy
-- moved it). On a full check every period is
-- touched, and the per-rollup totals are the totals over all periods, as before.
{%- set window_hours = var('dedup_window_hours') | int %}
{%- set grains = [('daily', 'day'), ('weekly', 'week'), ('monthly', 'month')] %}

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

touched_conversions as (
    select conversion_time
    from conversions
    where {{ test_scope(['last_loaded_at', 'optimized_at'], key='conversion_key', relation=ref('conversion_event')) }}
),

touched_instants as (
    {%- for hours in range(0, window_hours, 12) | list + [window_hours] %}
        select {{ dbt.dateadd('hour', hours, 'conversion_time') }} as touched_at
        from touched_conversions
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

touched_periods as (
    {%- for rollup, grain in grains %}
        select distinct
            '{{ rollup }}' as counted_in,
            {{ reporting_period_start('touched_at', grain) }} as period_date
        from touched_instants
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- conversion_event's rows counted in each rollup's touched periods, beside the rollup's own rows there.
totals as (
    {%- for rollup, grain in grains %}
        select
            touched_periods.counted_in,
            'conversion_event' as source_model,
            conversions.conversion_type,
            coalesce(conversions.campaign_id, '(unattributed)') as campaign_id,
            conversions.value_cents_reporting as revenue_cents,
            conversions.net_value_cents_reporting as net_revenue_cents,
            1 as conversions
        from conversions
        inner join touched_periods
            on
                touched_periods.counted_in = '{{ rollup }}'
                and {{ reporting_period_start('conversions.conversion_time', grain) }} = touched_periods.period_date
        union all
        select
            touched_periods.counted_in,
            'rollup' as source_model,
            {{ rollup }}.conversion_type,
            {{ rollup }}.campaign_id,
            {{ rollup }}.revenue_cents,
            {{ rollup }}.net_revenue_cents,
            {{ rollup }}.conversions
        from {{ rollup }}
        inner join touched_periods
            on
                touched_periods.counted_in = '{{ rollup }}'
                and {{ rollup }}.period_date = touched_periods.period_date
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

totals_compared as (
    select
        counted_in,
        conversion_type,
        campaign_id,
        sum(case when source_model = 'conversion_event' then conversions else 0 end) as conversion_event_conversions,
        sum(case when source_model = 'conversion_event' then revenue_cents else 0 end)
            as conversion_event_revenue_cents,
        sum(case when source_model = 'rollup' then conversions else 0 end) as rollup_conversions,
        sum(case when source_model = 'rollup' then revenue_cents else 0 end) as rollup_revenue_cents,
        sum(case when source_model = 'conversion_event' then net_revenue_cents else 0 end)
            as conversion_event_net_revenue_cents,
        sum(case when source_model = 'rollup' then net_revenue_cents else 0 end) as rollup_net_revenue_cents
    from totals
    group by
        counted_in,
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
            revenue_cents,
            net_revenue_cents
        from daily
        union all
        select
            '{{ rollup }}' as counted_in,
            period_date,
            conversion_type,
            campaign_id,
            -conversions as conversions,
            -revenue_cents as revenue_cents,
            -net_revenue_cents as net_revenue_cents
        from {{ rollup }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

touched_period_differences as (
    select period_differences.*
    from period_differences
    inner join touched_periods
        on
            period_differences.counted_in = touched_periods.counted_in
            and period_differences.period_date = touched_periods.period_date
),

periods_compared as (
    select
        counted_in,
        period_date,
        conversion_type,
        campaign_id,
        sum(conversions) as conversions_difference,
        sum(revenue_cents) as revenue_difference,
        sum(net_revenue_cents) as net_revenue_difference
    from touched_period_differences
    group by
        counted_in,
        period_date,
        conversion_type,
        campaign_id
),

failures as (
    select
        concat('totals in ', counted_in) as check_name,
        cast(null as date) as period_date,
        conversion_type,
        campaign_id
    from totals_compared
    where
        rollup_conversions <> conversion_event_conversions
        or rollup_revenue_cents <> conversion_event_revenue_cents
        or rollup_net_revenue_cents <> conversion_event_net_revenue_cents
    union all
    select
        counted_in as check_name,
        period_date,
        conversion_type,
        campaign_id
    from periods_compared
    where conversions_difference <> 0 or revenue_difference <> 0 or net_revenue_difference <> 0
)

select * from failures
