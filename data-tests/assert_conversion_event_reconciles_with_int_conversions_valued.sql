-- conversion_event has exactly the conversions of int_conversions_valued, each with the same key, value
-- and loads: the facts add the Meta delivery state to the valued conversions and change nothing else.
-- Fails with the rows found on one side only.
with facts as (
    select
        id,
        conversion_key,
        value_cents,
        value_cents_reporting,
        created_at,
        last_loaded_at
    from {{ ref('conversion_event') }}
),

valued as (
    select
        id,
        conversion_key,
        value_cents,
        value_cents_reporting,
        created_at,
        last_loaded_at
    from {{ ref('int_conversions_valued') }}
),

only_in_facts as (
    select * from facts
    except
    select * from valued
),

only_in_valued as (
    select * from valued
    except
    select * from facts
),

final as (
    select
        'only in conversion_event' as found,
        only_in_facts.*
    from only_in_facts
    union all
    select
        'only in int_conversions_valued' as found,
        only_in_valued.*
    from only_in_valued
)

select * from final
