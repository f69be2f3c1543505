-- In every period type, period and attribution model, conversion_metrics credits exactly the period's
-- conversions: the attributed conversions add up to their number and the credited values to their value
-- in the reporting currency (conversion_event). Returns the periods where either differs.
with metrics as (
    select * from {{ ref('conversion_metrics') }}
),

conversions as (
    select * from {{ ref('conversion_event') }}
),

period_types as (
    {{ period_types_query() }}
),

conversion_totals as (
    select
        period_types.period_type,
        {{ period_start('period_types.period_type', 'conversions.conversion_time') }} as period_date,
        count(*) as conversions,
        sum(conversions.value_cents_reporting) as value_cents
    from conversions
    cross join period_types
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
    {%- for model_name in attribution_models() %}
        select '{{ model_name }}' as attribution_model
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

expected as (
    select
        conversion_totals.*,
        attribution_models.attribution_model
    from conversion_totals
    cross join attribution_models
)

select
    expected.period_type,
    expected.period_date,
    expected.attribution_model,
    expected.conversions,
    metric_totals.attributed_conversions,
    expected.value_cents,
    metric_totals.total_value_cents
from expected
full outer join metric_totals
    on
        expected.period_type = metric_totals.period_type
        and expected.period_date = metric_totals.period_date
        and expected.attribution_model = metric_totals.attribution_model
where
    expected.conversions is null
    or metric_totals.attributed_conversions is null
    or expected.conversions <> metric_totals.attributed_conversions
    or expected.value_cents <> metric_totals.total_value_cents
