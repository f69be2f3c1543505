{#-
    The conversion rollups (conversion_rollup_daily / _weekly / _monthly): conversions by
    conversion_type × campaign × ad set × channel × utm_source × device_type × country, attributed as
    the conversion itself reports them (its own campaign and UTM tags: the `reported` model), so they
    reconcile exactly with conversion_event. See the docs block conversion_rollups.
-#}

{#-
    One row per conversion with its rollup dimensions, the start of its period (`grain`: day, week or
    month, reporting time zone) and the start of the period of the person's first conversion of the
    same type (to tell new from repeat customers).
-#}
{% macro conversion_rollup_facts(grain) -%}
    select
        {{ reporting_period_start('conversions.conversion_time', grain) }} as period_date,
        conversions.conversion_type,
        coalesce(conversions.campaign_id, '(unattributed)') as campaign_id,
        conversions.ad_set_id,
        -- 'other' only if the seed lost its catch-all row (a test flags that).
        coalesce(channels.channel, 'other') as channel,
        conversions.utm_source,
        conversions.device_type,
        conversions.country,
        conversions.person_id,
        conversions.value_cents_reporting,
        conversions.net_value_cents_reporting,
        conversions.is_refunded,
        {{ reporting_period_start('first_conversions.first_conversion_at', grain) }} as first_conversion_period_date
    from conversions
    left join channels
        on conversions.id = channels.id
    inner join first_conversions
        on
            conversions.person_id = first_conversions.person_id
            and conversions.conversion_type = first_conversions.conversion_type
{%- endmacro %}

{#-
    The import CTEs every rollup needs (conversions, their channel, first conversion per person and
    type). With `touched_periods` (a relation of period_date, the periods of `grain` an incremental run
    recomputes), `conversions` holds only the conversions of those periods, and the first conversions
    are looked up for their persons only.
-#}
{% macro conversion_rollup_inputs(grain, touched_periods=none) -%}
    all_conversions as (
        select * from {{ ref('conversion_event') }}
    ),

    conversions as (
        select * from all_conversions
        {%- if touched_periods %}
            where
                {{ reporting_period_start('all_conversions.conversion_time', grain) }}
                in (select touched.period_date from {{ touched_periods }} as touched)
        {%- endif %}
    ),

    channels as (
        {{ attribution_channel_lookup('conversions', 'id') }}
    ),

    first_conversions as (
        select
            person_id,
            conversion_type,
            min(conversion_time) as first_conversion_at
        from all_conversions
        {%- if touched_periods %}
            where exists (
                select 1
                from conversions as in_period
                where
                    in_period.person_id = all_conversions.person_id
                    and in_period.conversion_type = all_conversions.conversion_type
            )
        {%- endif %}
        group by
            person_id,
            conversion_type
    )
{%- endmacro %}

{%- macro conversion_rollup_dimensions(prefix='') -%}
    {%- set columns = ['conversion_type', 'campaign_id', 'ad_set_id', 'channel', 'utm_source', 'device_type', 'country'] -%}
    {%- for column in columns %}
        {{ prefix }}{{ column }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#-
    Distinct persons of a facts CTE, by period and dimensions: every person converting, the new
    customers (their first conversion of that type ever falls in this period) and the repeat customers
    (it fell in an earlier period); new + repeat = persons_converting.
-#}
{#- The money and refund measures of a facts CTE: gross and net revenue, refunded conversions. -#}
{% macro conversion_rollup_money_measures() -%}
    sum(value_cents_reporting) as revenue_cents,
    sum(net_value_cents_reporting) as net_revenue_cents,
    count(case when is_refunded then 1 end) as refunded_conversions
{%- endmacro %}

{% macro conversion_rollup_person_measures() -%}
    count(distinct person_id) as persons_converting,
    count(distinct case when first_conversion_period_date = period_date then person_id end) as new_customers,
    count(distinct case when first_conversion_period_date < period_date then person_id end) as repeat_customers
{%- endmacro %}

{% macro conversion_rollup_person_counts(facts) -%}
    select
        period_date,
        {{ conversion_rollup_dimensions() }},
        {{ conversion_rollup_person_measures() }}
    from {{ facts }}
    group by
        period_date,
        {{ conversion_rollup_dimensions() }}
{%- endmacro %}

{#- The final columns of every rollup, from a CTE with the summed measures. -#}
{% macro conversion_rollup_final(period_type, measures) -%}
    select
        {{ uuid_from_columns([
            "'" ~ period_type ~ "'", 'period_date', 'conversion_type', 'campaign_id', 'ad_set_id',
            'channel', 'utm_source', 'device_type', 'country',
        ]) }} as id,
        {{ conversion_rollup_dimensions() }},
        cast('{{ var("reporting_currency", "USD") }}' as {{ dbt.type_string() }}) as reporting_currency,
        cast('{{ period_type }}' as {{ dbt.type_string() }}) as period_type,
        cast(conversions as {{ dbt.type_bigint() }}) as conversions,
        cast(revenue_cents as {{ dbt.type_bigint() }}) as revenue_cents,
        {{ round_half_up(safe_divide('revenue_cents', 'conversions')) }} as average_value_cents,
        cast(net_revenue_cents as {{ dbt.type_bigint() }}) as net_revenue_cents,
        cast(refunded_conversions as {{ dbt.type_bigint() }}) as refunded_conversions,
        {{ percentage('refunded_conversions', 'conversions') }} as refund_rate,
        cast(persons_converting as {{ dbt.type_bigint() }}) as persons_converting,
        cast(new_customers as {{ dbt.type_bigint() }}) as new_customers,
        cast(repeat_customers as {{ dbt.type_bigint() }}) as repeat_customers,
        period_date
    from {{ measures }}
{%- endmacro %}

{#-
    A weekly or monthly rollup: the additive measures (conversions, revenue) summed from the daily
    rollup, the distinct persons counted from the facts; never an average of averages. With
    `touched_periods`, only those periods (see conversion_rollup_inputs).
-#}
{% macro conversion_rollup_from_daily(period_type, grain, touched_periods=none) -%}
    with daily as (
        select * from {{ ref('conversion_rollup_daily') }}
        {%- if touched_periods %}
            where
                cast({{ dbt.date_trunc(grain, 'period_date') }} as date)
                in (select touched.period_date from {{ touched_periods }} as touched)
        {%- endif %}
    ),

    {{ conversion_rollup_inputs(grain, touched_periods) }},

    facts as (
        {{ conversion_rollup_facts(grain) }}
    ),

    additive_measures as (
        select
            cast({{ dbt.date_trunc(grain, 'period_date') }} as date) as period_date,
            {{ conversion_rollup_dimensions() }},
            sum(conversions) as conversions,
            sum(revenue_cents) as revenue_cents,
            sum(net_revenue_cents) as net_revenue_cents,
            sum(refunded_conversions) as refunded_conversions
        from daily
        group by
            cast({{ dbt.date_trunc(grain, 'period_date') }} as date),
            {{ conversion_rollup_dimensions() }}
    ),

    person_counts as (
        {{ conversion_rollup_person_counts('facts') }}
    ),

    -- Both sides have exactly the same groups; union + group by merges them without a join on
    -- nullable dimensions.
    measures as (
        select
            period_date,
            {{ conversion_rollup_dimensions() }},
            sum(conversions) as conversions,
            sum(revenue_cents) as revenue_cents,
            sum(net_revenue_cents) as net_revenue_cents,
            sum(refunded_conversions) as refunded_conversions,
            sum(persons_converting) as persons_converting,
            sum(new_customers) as new_customers,
            sum(repeat_customers) as repeat_customers
        from (
            select
                period_date,
                {{ conversion_rollup_dimensions() }},
                conversions,
                revenue_cents,
                net_revenue_cents,
                refunded_conversions,
                0 as persons_converting,
                0 as new_customers,
                0 as repeat_customers
            from additive_measures
            union all
            select
                period_date,
                {{ conversion_rollup_dimensions() }},
                0 as conversions,
                0 as revenue_cents,
                0 as net_revenue_cents,
                0 as refunded_conversions,
                persons_converting,
                new_customers,
                repeat_customers
            from person_counts
        ) as both_sides
        group by
            period_date,
            {{ conversion_rollup_dimensions() }}
    ),

    final as (
        {{ conversion_rollup_final(period_type, 'measures') }}
    )

    select * from final
{%- endmacro %}
