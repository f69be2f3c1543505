-- In every period type, period and attribution model, conversion_metrics credits exactly the period's
-- conversions: the attributed conversions add up to their number and the credited values to their value
-- in the reporting currency (conversion_event). Returns the periods where either differs.
--
-- On an incremental build it compares the periods this run may have changed (test_scope,
-- macros/test_scope.sql): the periods of the conversions whose keys were rewritten, and of every day
-- up to var dedup_window_hours later (every copy of a key lies within the window after the time of the
-- conversion it belongs to, so this covers the period a conversion left when a late copy moved it), plus
-- the periods of the metric rows whose inputs changed (`updated_at`). Every other period has the same
-- conversions and metric rows as when it last passed. Conversions before the first touched day are not
-- read at all.
{%- set window_hours = var('dedup_window_hours') | int %}

with metrics as (
    select * from {{ ref('conversion_metrics') }}
),

conversions as (
    select * from {{ ref('conversion_event') }}
),

period_types as (
    {{ period_types_query() }}
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
    select
        period_types.period_type,
        {{ period_start('period_types.period_type', 'touched_instants.touched_at') }} as period_date
    from touched_instants
    cross join period_types
    union
    select
        period_type,
        period_date
    from metrics
    where {{ test_scope('updated_at') }}
),

first_touched_day as (
    select min(period_date) as period_date
    from touched_periods
),

conversion_totals as (
    select
        period_types.period_type,
        {{ period_start('period_types.period_type', 'conversions.conversion_time') }} as period_date,
        count(*) as conversions,
        sum(conversions.value_cents_reporting) as value_cents
    from conversions
    cross join period_types
    where
        {{ reporting_period_start('conversions.conversion_time', 'day') }}
        >= (select first_touched_day.period_date from first_touched_day)
    group by
        period_types.period_type,
        {{ period_start('period_types.period_type', 'conversions.conversion_time') }}
),

metric_totals as (
    select
        period_type,
        period_date,
        attribution_model,
        sum(attributed_conversions) as attributed_conversions,
        sum(total_value_cents) as total_value_cents
    from metrics
    group by
        period_type,
        period_date,
        attribution_model
    having sum(attributed_conversions) > 0
),

attribution_models as (
    {{ attribution_models_query() }}
),

expected as (
    select
        conversion_totals.*,
        attribution_models.attribution_model
    from conversion_totals
    inner join touched_periods
        on
            conversion_totals.period_type = touched_periods.period_type
            and conversion_totals.period_date = touched_periods.period_date
    cross join attribution_models
),

compared_metric_totals as (
    select metric_totals.*
    from metric_totals
    inner join touched_periods
        on
            metric_totals.period_type = touched_periods.period_type
            and metric_totals.period_date = touched_periods.period_date
)

select
    expected.period_type,
    expected.period_date,
    expected.attribution_model,
    expected.conversions,
    compared_metric_totals.attributed_conversions,
    expected.value_cents,
    compared_metric_totals.total_value_cents
from expected
full outer join compared_metric_totals
    on
        expected.period_type = compared_metric_totals.period_type
        and expected.period_date = compared_metric_totals.period_date
        and expected.attribution_model = compared_metric_totals.attribution_model
where
    expected.conversions is null
    or compared_metric_totals.attributed_conversions is null
    or expected.conversions <> compared_metric_totals.attributed_conversions
    or expected.value_cents <> compared_metric_totals.total_value_cents
