-- Every conversion has rows in every attribution model, its credits sum to exactly 1 in each, and its
-- credited values sum to exactly its value in the reporting currency. Returns the offending
-- conversion × model pairs.
with conversions as (
    select * from {{ ref('conversion_event') }}
),

attribution as (
    select * from {{ ref('conversion_attribution') }}
),

attribution_models as (
    {%- for model_name in attribution_models() %}
        select '{{ model_name }}' as attribution_model
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

sums as (
    select
        conversion_id,
        attribution_model,
        sum(credit) as total_credit,
        sum(credited_value_cents) as total_credited_value_cents
    from attribution
    group by
        conversion_id,
        attribution_model
)

select
    conversions.id as conversion_id,
    attribution_models.attribution_model,
    sums.total_credit,
    sums.total_credited_value_cents,
    conversions.value_cents_reporting
from conversions
cross join attribution_models
left join sums
    on
        conversions.id = sums.conversion_id
        and attribution_models.attribution_model = sums.attribution_model
where
    sums.total_credit is null
    or sums.total_credit <> 1
    or sums.total_credited_value_cents <> conversions.value_cents_reporting
