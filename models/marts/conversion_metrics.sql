{%- set state = conversion_metrics_incremental_state() -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['period_type', 'period_date', 'attribution_model'],
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(conversion_metrics_incremental_state()) }}",
            "{{ delete_touched_rows(conversion_metrics_incremental_state()) }}",
        ],
        post_hook="{{ save_incremental_state(conversion_metrics_incremental_state()) }}",
    )
}}
{%- set is_incremental_run = incremental_spec_is_current(state) %}
-- The fingerprint reads the funnel definitions and exclusions (funnel_definition_hashes):
-- depends_on: {{ ref('int_funnel_definitions') }}
-- depends_on: {{ ref('int_funnel_exclusions') }}

-- The feature document's conversion_metrics: one row per period_type × period_date × attribution_model × campaign_id,
-- every metric of the metric dictionary (docs blocks in models/_docs_metrics.md) plus ad spend and
-- return. Periods are days, ISO weeks (Monday) and calendar months in the reporting time zone; every
-- period type is computed from the facts (distinct persons and medians do not add up). A row exists
-- when the campaign has credited conversions, reached persons, funnel starts or spend in the period,
-- for every attribution model; spend, reach and funnels do not depend on the model.
--
-- Incremental by period and attribution model (delete+insert on period_type, period_date,
-- attribution_model): a run recomputes the rows of the keys in audit.conversion_metrics_touched_keys
-- (macros/touched_keys.sql), emptied first by the pre-hook. A period is touched, in every period type and
-- every model, when it holds a copy of a conversion key loaded
-- since the last run (every copy: a conversion that moved or vanished touches its old period), the
-- earliest unchanged purchase of a person with an earlier changed copy (repeat purchasers flip there), a
-- conversion with credits recomputed from a newer input or accepted by Meta since, a campaign touchpoint
-- or ad spend loaded since, the start of a funnel row updated since or whose window holds a changed
-- conversion of the person; or when its stored funnel counts or spend per campaign differ from
-- conversion_funnel and the daily spend (a funnel start moved away; new exchange rates). "Since" is
-- strictly after the watermark the previous run recorded: rows at the watermark itself are the latest
-- load that run already counted, so a run with nothing new touches no period (macros/touched_keys.sql).
-- New Markov removal effects (those of conversion_attribution's markov rows, recorded with the state)
-- touch the markov rows of every period and no other model's: the other models' rows of the untouched
-- periods are kept. Every CTE below keeps the touched keys only, so the work of a run is that of its keys.
-- Nothing depends on the current time. Every row is recomputed when the credits' attribution settings, the reporting
-- time zone or currency, the optimization rules or the funnel definitions changed, or no state was saved
-- (audit.incremental_state, macros/incremental_state.sql).
--
-- Each conversion is credited, joined to its facts and counted once per model and campaign before it is
-- placed in its three periods (it lies in one period of each type), and reach is counted per period and
-- campaign before it is spread over the models: the per-period work is on the smallest rows.
with period_types as (
    {{ period_types_query() }}
),

attribution_models as (
    {{ attribution_models_query() }}
),

{% if is_incremental_run -%}
    -- The periods and attribution models to recompute (of the models attribution_models() lists: a
    -- touched markov key with var attribution_markov false only empties its rows).
    touched_keys as (
        select touched.*
        from {{ touched_keys_relation() }} as touched
        where touched.attribution_model in (select attribution_models.attribution_model from attribution_models)
    ),

    touched_periods as (
        select distinct
            period_type,
            period_date
        from touched_keys
    ),

    -- The local days of the touched periods, per attribution model: facts are read for these days only,
    -- and only the touched keys are kept (a week that reaches beyond a touched month is only partly read).
    covered_model_days as (
        select distinct
            touched_keys.attribution_model,
            cast({{ dbt.dateadd('day', 'day_offsets.day_offset', 'touched_keys.period_date') }} as date)
                as period_date
        from touched_keys
        cross join (
            {%- for day_offset in range(31) %}
                select {{ day_offset }} as day_offset{{ ' union all' if not loop.last }}
            {%- endfor %}
        ) as day_offsets
        where
            {{ period_start_of_date(
                'touched_keys.period_type',
                dbt.dateadd('day', 'day_offsets.day_offset', 'touched_keys.period_date'),
            ) }} = touched_keys.period_date
    ),

    -- The same days, whatever the model: what reach, funnels and spend (the same in every model) read.
    covered_days as (
        select distinct covered_model_days.period_date
        from covered_model_days
    ),
{%- endif %}

-- The credited rows with what the metrics read, and the local day of their conversion. The day is computed
-- before the rows are matched with the covered days: a correlated condition on an expression of the row
-- made DuckDB group every attribution row by (conversion_time, attribution_model) first.
attribution as (
    select attribution_days.*
    from (
        select
            attribution_rows.attribution_model,
            attribution_rows.campaign_id,
            attribution_rows.conversion_id,
            attribution_rows.credit,
            attribution_rows.credited_value_cents,
            attribution_rows.credited_net_value_cents,
            attribution_rows.is_refunded,
            attribution_rows.last_click_to_conversion_hours,
            attribution_rows.conversion_time,
            {{ reporting_period_start('attribution_rows.conversion_time', 'day') }} as conversion_day
        from {{ ref('conversion_attribution') }} as attribution_rows
    ) as attribution_days
    {%- if is_incremental_run %}
        where exists (
            select 1 from covered_model_days
            where
                covered_model_days.attribution_model = attribution_days.attribution_model
                and covered_model_days.period_date = attribution_days.conversion_day
        )
    {%- endif %}
),

conversions as (
    select * from {{ ref('conversion_event') }}
),

meta_events as (
    select * from {{ ref('meta_capi_events') }}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
    {{ covered_days_filter(is_incremental_run, reporting_period_start('touchpoint_time', 'day')) }}
),

-- A person excluded from a funnel (an exclusion step) has left it: not counted.
funnels as (
    select * from {{ ref('conversion_funnel') }}
    where not is_excluded
    {%- if is_incremental_run %}
        and {{ reporting_period_start('started_at', 'day') }} in (select covered_days.period_date from covered_days)
    {%- endif %}
),

ad_spend as (
    select * from {{ ref('int_attribution_ad_spend_daily') }}
    {{ covered_days_filter(is_incremental_run, 'spend_date') }}
),

-- Every credited row once per period type, in the period of its conversion (of the touched keys only on
-- an incremental run).
credited as (
    select
        period_types.period_type,
        {{ period_start_of_date('period_types.period_type', 'attribution.conversion_day') }} as period_date,
        attribution.*
    from attribution
    cross join period_types
),

credit_totals as (
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        sum(credit) as attributed_conversions,
        sum(credited_value_cents) as total_value_cents,
        sum(credited_net_value_cents) as total_net_value_cents,
        sum(case when is_refunded then credit else 0 end) as refunded_conversions
    from credited
    {{ touched_keys_filter(is_incremental_run, 'credited') }}
    group by
        period_type,
        period_date,
        attribution_model,
        campaign_id
),

click_hours as (
    select distinct
        conversion_id,
        last_click_to_conversion_hours
    from attribution
),

-- Each conversion credited to the campaign (however many of its touches were), with what the
-- conversion-level metrics need: once per model and campaign, before it is placed in its periods (a
-- conversion lies in one period of each type).
credited_conversion_rows as (
    select
        credited_conversions.attribution_model,
        credited_conversions.campaign_id,
        credited_conversions.conversion_id,
        credited_conversions.conversion_day,
        conversions.person_id,
        conversions.conversion_type,
        conversions.is_optimized,
        -- Eligibility is defined once, by the optimization rules in meta_capi_events.
        coalesce(meta_events.is_eligible, false) as is_meta_eligible,
        click_hours.last_click_to_conversion_hours,
        conversions.created_at,
        greatest(conversions.last_loaded_at, conversions.optimized_at) as changed_at
    from (
        select distinct
            attribution.attribution_model,
            attribution.campaign_id,
            attribution.conversion_id,
            attribution.conversion_day
        from attribution
        where attribution.credit > 0
    ) as credited_conversions
    inner join conversions
        on credited_conversions.conversion_id = conversions.id
    inner join click_hours
        on credited_conversions.conversion_id = click_hours.conversion_id
    left join meta_events
        on credited_conversions.conversion_id = meta_events.conversion_id
),

-- The same, in the period of each type of its conversion.
credited_conversion_facts as (
    select expanded.*
    from (
        select
            period_types.period_type,
            {{ period_start_of_date('period_types.period_type', 'credited_conversion_rows.conversion_day') }}
                as period_date,
            credited_conversion_rows.*
        from credited_conversion_rows
        cross join period_types
    ) as expanded
    {{ touched_keys_filter(is_incremental_run, 'expanded') }}
),

conversion_counts as (
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        count(*) as credited_conversion_count,
        sum(case when is_meta_eligible then 1 else 0 end) as eligible_conversions,
        sum(case when is_meta_eligible and is_optimized then 1 else 0 end) as optimized_conversions,
        {{ median('last_click_to_conversion_hours') }} as median_last_click_to_conversion_hours,
        min(created_at) as created_at,
        max(changed_at) as updated_at
    from credited_conversion_facts
    group by
        period_type,
        period_date,
        attribution_model,
        campaign_id
),

-- Persons reached: a touchpoint of the campaign in the period (touches without a campaign_id reach no
-- campaign). Converted: such a person also has a conversion credited to the campaign in the period.
reached_persons as (
    select expanded.*
    from (
        select
            period_types.period_type,
            {{ period_start('period_types.period_type', 'touchpoints.touchpoint_time') }} as period_date,
            touchpoints.campaign_id,
            touchpoints.person_id,
            min(touchpoints._loaded_at) as first_loaded_at,
            max(touchpoints._loaded_at) as last_loaded_at
        from touchpoints
        cross join period_types
        where touchpoints.campaign_id is not null
        group by
            period_types.period_type,
            {{ period_start('period_types.period_type', 'touchpoints.touchpoint_time') }},
            touchpoints.campaign_id,
            touchpoints.person_id
    ) as expanded
    {{ touched_keys_filter(is_incremental_run, 'expanded', by_model=false) }}
),

-- The columns in the order of reach_converted's join (attribution_model last): PostgreSQL sorts the distinct
-- rows by them and then merge-joins them with reached_persons on the sorted prefix. With attribution_model
-- third, that prefix was (period_type, period_date) alone, so it compared every converting person of a
-- period with every reached person of the same period: at 10M events the incremental build had not
-- finished this model after 25 minutes; in this order the same query takes 188 s with every key touched.
converting_persons as (
    select distinct
        period_type,
        period_date,
        campaign_id,
        person_id,
        attribution_model
    from credited_conversion_facts
),

-- Reached persons per period and campaign (the same in every model), and per model those of them with a
-- conversion credited to the campaign in the period.
reach_totals as (
    select
        period_type,
        period_date,
        campaign_id,
        count(*) as reached_persons,
        min(first_loaded_at) as created_at,
        max(last_loaded_at) as updated_at
    from reached_persons
    group by
        period_type,
        period_date,
        campaign_id
),

reach_converted as (
    select
        converting_persons.period_type,
        converting_persons.period_date,
        converting_persons.attribution_model,
        converting_persons.campaign_id,
        count(*) as reached_persons_converted
    from converting_persons
    inner join reached_persons
        on
            converting_persons.period_type = reached_persons.period_type
            and converting_persons.period_date = reached_persons.period_date
            and converting_persons.campaign_id = reached_persons.campaign_id
            and converting_persons.person_id = reached_persons.person_id
    group by
        converting_persons.period_type,
        converting_persons.period_date,
        converting_persons.attribution_model,
        converting_persons.campaign_id
),

reach_counts as (
    select
        reach_totals.period_type,
        reach_totals.period_date,
        period_models.attribution_model,
        reach_totals.campaign_id,
        reach_totals.reached_persons,
        coalesce(reach_converted.reached_persons_converted, 0) as reached_persons_converted,
        reach_totals.created_at,
        reach_totals.updated_at
    from reach_totals
    {{ join_period_models(is_incremental_run, 'reach_totals') }}
    left join reach_converted
        on
            reach_totals.period_type = reach_converted.period_type
            and reach_totals.period_date = reach_converted.period_date
            and period_models.attribution_model = reach_converted.attribution_model
            and reach_totals.campaign_id = reach_converted.campaign_id
),

-- Purchasers with a purchase credited to the campaign in the period; repeat customers had their first
-- purchase ever (any campaign) in an earlier period.
purchasers as (
    select distinct
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        person_id
    from credited_conversion_facts
    where conversion_type = 'purchase'
),

first_purchases as (
    select
        person_id,
        min(conversion_time) as first_purchase_at
    from conversions
    where
        conversion_type = 'purchase'
        and person_id in (select purchasers.person_id from purchasers)
    group by person_id
),

purchaser_histories as (
    select
        purchasers.*,
        {{ period_start('purchasers.period_type', 'first_purchases.first_purchase_at') }}
        < purchasers.period_date as is_repeat_purchaser
    from purchasers
    inner join first_purchases
        on purchasers.person_id = first_purchases.person_id
),

purchaser_counts as (
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id,
        count(*) as purchasers,
        sum(case when is_repeat_purchaser then 1 else 0 end) as repeat_purchasers
    from purchaser_histories
    group by
        period_type,
        period_date,
        attribution_model,
        campaign_id
),

-- Funnel rows (one per person × funnel: the winning attempt) by the campaign of their step-1 event and
-- the period of started_at.
funnel_counts as (
    select expanded.*
    from (
        select
            period_types.period_type,
            {{ period_start('period_types.period_type', 'funnels.started_at') }} as period_date,
            coalesce(funnels.campaign_id, '(unattributed)') as campaign_id,
            count(*) as funnel_starts,
            sum(case when funnels.is_converted then 1 else 0 end) as funnel_completions,
            sum(case when funnels.is_converted then funnels.total_time_seconds end) as completed_funnel_seconds,
            min(funnels.created_at) as created_at,
            max(funnels.updated_at) as updated_at
        from funnels
        cross join period_types
        group by
            period_types.period_type,
            {{ period_start('period_types.period_type', 'funnels.started_at') }},
            coalesce(funnels.campaign_id, '(unattributed)')
    ) as expanded
    {{ touched_keys_filter(is_incremental_run, 'expanded', by_model=false) }}
),

spend_totals as (
    select expanded.*
    from (
        select
            period_types.period_type,
            {{ period_start_of_date('period_types.period_type', 'ad_spend.spend_date') }} as period_date,
            ad_spend.campaign_id,
            case
                when count(ad_spend.spend_cents) = count(*) then sum(ad_spend.spend_cents)
            end as spend_cents,
            sum(ad_spend.impressions) as impressions,
            sum(ad_spend.clicks) as clicks,
            min(ad_spend.first_loaded_at) as created_at,
            max(ad_spend.last_loaded_at) as updated_at
        from ad_spend
        cross join period_types
        group by
            period_types.period_type,
            {{ period_start_of_date('period_types.period_type', 'ad_spend.spend_date') }},
            ad_spend.campaign_id
    ) as expanded
    {{ touched_keys_filter(is_incremental_run, 'expanded', by_model=false) }}
),

grain as (
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id
    from credit_totals
    union
    select
        period_type,
        period_date,
        attribution_model,
        campaign_id
    from reach_counts
    union
    select
        funnel_counts.period_type,
        funnel_counts.period_date,
        period_models.attribution_model,
        funnel_counts.campaign_id
    from funnel_counts
    {{ join_period_models(is_incremental_run, 'funnel_counts') }}
    union
    select
        spend_totals.period_type,
        spend_totals.period_date,
        period_models.attribution_model,
        spend_totals.campaign_id
    from spend_totals
    {{ join_period_models(is_incremental_run, 'spend_totals') }}
),

joined as (
    select
        grain.period_type,
        grain.period_date,
        grain.attribution_model,
        grain.campaign_id,
        coalesce(credit_totals.attributed_conversions, 0) as attributed_conversions,
        coalesce(credit_totals.total_value_cents, 0) as total_value_cents,
        coalesce(credit_totals.total_net_value_cents, 0) as total_net_value_cents,
        coalesce(credit_totals.refunded_conversions, 0) as refunded_conversions,
        coalesce(reach_counts.reached_persons, 0) as reached_persons,
        coalesce(reach_counts.reached_persons_converted, 0) as reached_persons_converted,
        coalesce(purchaser_counts.purchasers, 0) as purchasers,
        coalesce(purchaser_counts.repeat_purchasers, 0) as repeat_purchasers,
        coalesce(funnel_counts.funnel_starts, 0) as funnel_starts,
        coalesce(funnel_counts.funnel_completions, 0) as funnel_completions,
        funnel_counts.completed_funnel_seconds,
        conversion_counts.median_last_click_to_conversion_hours,
        coalesce(conversion_counts.eligible_conversions, 0) as eligible_conversions,
        coalesce(conversion_counts.optimized_conversions, 0) as optimized_conversions,
        -- A period with no delivery at all: 0 spend, impressions and clicks.
        case when spend_totals.campaign_id is null then 0 else spend_totals.spend_cents end as spend_cents,
        coalesce(spend_totals.impressions, 0) as impressions,
        coalesce(spend_totals.clicks, 0) as clicks,
        -- least/greatest skip nulls (DuckDB, Postgres, Spark): the inputs this row has.
        least(
            conversion_counts.created_at, reach_counts.created_at, funnel_counts.created_at, spend_totals.created_at
        ) as created_at,
        greatest(
            conversion_counts.updated_at, reach_counts.updated_at, funnel_counts.updated_at, spend_totals.updated_at
        ) as updated_at
    from grain
    left join credit_totals
        on
            grain.period_type = credit_totals.period_type
            and grain.period_date = credit_totals.period_date
            and grain.attribution_model = credit_totals.attribution_model
            and grain.campaign_id = credit_totals.campaign_id
    left join conversion_counts
        on
            grain.period_type = conversion_counts.period_type
            and grain.period_date = conversion_counts.period_date
            and grain.attribution_model = conversion_counts.attribution_model
            and grain.campaign_id = conversion_counts.campaign_id
    left join reach_counts
        on
            grain.period_type = reach_counts.period_type
            and grain.period_date = reach_counts.period_date
            and grain.attribution_model = reach_counts.attribution_model
            and grain.campaign_id = reach_counts.campaign_id
    left join purchaser_counts
        on
            grain.period_type = purchaser_counts.period_type
            and grain.period_date = purchaser_counts.period_date
            and grain.attribution_model = purchaser_counts.attribution_model
            and grain.campaign_id = purchaser_counts.campaign_id
    left join funnel_counts
        on
            grain.period_type = funnel_counts.period_type
            and grain.period_date = funnel_counts.period_date
            and grain.campaign_id = funnel_counts.campaign_id
    left join spend_totals
        on
            grain.period_type = spend_totals.period_type
            and grain.period_date = spend_totals.period_date
            and grain.campaign_id = spend_totals.campaign_id
),

final as (
    select
        {{ uuid_from_columns(['period_type', 'period_date', 'attribution_model', 'campaign_id']) }} as id,
        cast(null as {{ dbt.type_string() }}) as person_id,
        campaign_id,
        attribution_model,
        case
            when eligible_conversions = 0 then 'not_eligible'
            when optimized_conversions = 0 then 'pending'
            when optimized_conversions < eligible_conversions then 'partial'
            else 'complete'
        end as optimization_status,
        period_type,
        {{ round_half_up('attributed_conversions') }} as total_conversions,
        cast(attributed_conversions as decimal(18, 9)) as attributed_conversions,
        cast(total_value_cents as {{ dbt.type_bigint() }}) as total_value_cents,
        {{ round_half_up(safe_divide('total_value_cents', 'attributed_conversions')) }} as average_value_cents,
        cast(total_net_value_cents as {{ dbt.type_bigint() }}) as total_net_value_cents,
        {{ percentage('refunded_conversions', 'attributed_conversions') }} as refund_rate,
        cast(reached_persons as {{ dbt.type_bigint() }}) as reached_persons,
        cast(reached_persons_converted as {{ dbt.type_bigint() }}) as reached_persons_converted,
        case
            when campaign_id <> '(unattributed)'
                then {{ percentage('reached_persons_converted', 'reached_persons') }}
        end as conversion_rate,
        cast(purchasers as {{ dbt.type_bigint() }}) as purchasers,
        cast(repeat_purchasers as {{ dbt.type_bigint() }}) as repeat_purchasers,
        {{ percentage('repeat_purchasers', 'purchasers') }} as repeat_customer_rate,
        cast(funnel_starts as {{ dbt.type_bigint() }}) as total_funnel_starts,
        cast(funnel_completions as {{ dbt.type_bigint() }}) as total_funnel_completions,
        {{ percentage('funnel_completions', 'funnel_starts') }} as funnel_completion_rate,
        {{ round_half_up(safe_divide('completed_funnel_seconds', 'funnel_completions')) }}
            as average_funnel_time_seconds,
        {{ round_half_up('median_last_click_to_conversion_hours') }} as last_click_to_conversion_hours,
        cast(eligible_conversions as {{ dbt.type_bigint() }}) as eligible_conversions,
        cast(optimized_conversions as {{ dbt.type_bigint() }}) as optimized_conversions,
        {{ percentage('optimized_conversions', 'eligible_conversions') }} as optimized_percentage,
        cast(spend_cents as {{ dbt.type_bigint() }}) as spend_cents,
        cast(impressions as {{ dbt.type_bigint() }}) as impressions,
        cast(clicks as {{ dbt.type_bigint() }}) as clicks,
        {{ percentage('clicks', 'impressions') }} as ctr,
        {{ round_half_up(safe_divide('spend_cents', 'attributed_conversions')) }} as cpa_cents,
        cast(
            floor({{ safe_divide('total_value_cents', 'spend_cents') }} * 10000 + 0.5) / 10000 as decimal(18, 4)
        ) as roas,
        cast(
            floor({{ safe_divide('total_net_value_cents', 'spend_cents') }} * 10000 + 0.5) / 10000 as decimal(18, 4)
        ) as net_roas,
        eligible_conversions > 0 and optimized_conversions = eligible_conversions as is_optimized,
        period_date,
        created_at,
        updated_at
    from joined
)

select * from final
