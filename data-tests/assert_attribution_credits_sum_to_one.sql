-- Every conversion has rows in every attribution model, its credits sum to exactly 1 in each, and its
-- credited values sum to exactly its value in the reporting currency. Returns the offending
-- conversion × model pairs. On an incremental build it checks the conversions whose facts or credits
-- this run rewrote (test_scope, macros/test_scope.sql): a conversion's credits change only with its
-- credits in int_attribution_credits, its value only with its conversion_event row.
with touched_conversions as (
    select id
    from {{ ref('conversion_event') }}
    where {{ test_scope(['last_loaded_at', 'optimized_at'], key='conversion_key', relation=ref('conversion_event')) }}
    union
    select conversion_id as id
    from {{ ref('int_attribution_credits') }}
    where {{ test_scope('inputs_loaded_at') }}
),

conversions as (
    select * from {{ ref('conversion_event') }}
    where id in (select touched_conversions.id from touched_conversions)
),

attribution as (
    select * from {{ ref('conversion_attribution') }}
    where conversion_id in (select touched_conversions.id from touched_conversions)
),

attribution_models as (
    {{ attribution_models_query() }}
),

sums as (
    select
        conversion_id,
        attribution_model,
        sum(credit) as total_credit,
        sum(credited_value_cents) as total_credited_value_cents,
        sum(credited_net_value_cents) as total_credited_net_value_cents
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
    conversions.value_cents_reporting,
    sums.total_credited_net_value_cents,
    conversions.net_value_cents_reporting
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
    or sums.total_credited_net_value_cents <> conversions.net_value_cents_reporting
