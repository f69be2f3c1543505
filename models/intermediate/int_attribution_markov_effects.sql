{#-
    The first-order Markov chain behind attribution model `markov`: one row per state (a channel, or a
    campaign with var attribution_markov_states = 'campaign') with its removal effect. Rebuilt from all
    history on every run (a table): the removal effects depend on every path, converting or not.
    The method, the paths used and a worked example: the docs block markov_attribution.

    Paths: per conversion, its touches in the lookback window (the touches the other models credit),
    ending in (conversion); per person with touches and no conversion at all, all their touches, ending
    in (null). Every path begins in (start). Transition probabilities are the shares of the transitions
    leaving a state. A chain's conversion probability is the probability of being absorbed in
    (conversion) from (start); removing a state sends every transition into it to (null). The absorption
    probability is read from the chain's matrix (absorbing states looping on themselves) raised to the
    power 2^squarings by repeated squaring: the probability of conversion within 2^squarings steps, equal
    to the limit unless a path could stay unabsorbed that long (see the docs block).
-#}
{%- set squarings = 32 %}
{%- set double = 'double precision' if target.type == 'postgres' else 'double' %}
{%- if var('attribution_markov_states', 'channel') not in ('channel', 'campaign') %}
    {{ exceptions.raise_compiler_error(
        "var attribution_markov_states must be 'channel' or 'campaign', not '"
        ~ var('attribution_markov_states') ~ "'"
    ) }}
{%- endif %}
{%- set state_expression = markov_state_of('touchpoints') %}

{%- set is_enabled = var('attribution_markov', true) %}

with conversions as (
    select * from {{ ref('int_conversions_valued') }}
    {%- if not is_enabled %}
        where 1 = 0
    {%- endif %}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
    {%- if not is_enabled %}
        where 1 = 0
    {%- endif %}
),

-- The touches of each conversion's lookback window, as int_attribution_credits reads them.
converting_steps as (
    select
        conversions.id as path_id,
        {{ state_expression }} as markov_state,
        row_number() over (
            partition by conversions.id
            order by touchpoints.touchpoint_time, touchpoints.touchpoint_event_id
        ) as step,
        count(*) over (partition by conversions.id) as steps
    from conversions
    inner join touchpoints
        on {{ touch_in_lookback_window('conversions', 'touchpoints') }}
),

-- All touches of the persons with touches and no conversion.
non_converting_steps as (
    select
        touchpoints.person_id as path_id,
        {{ state_expression }} as markov_state,
        row_number() over (
            partition by touchpoints.person_id
            order by touchpoints.touchpoint_time, touchpoints.touchpoint_event_id
        ) as step,
        count(*) over (partition by touchpoints.person_id) as steps
    from touchpoints
    where
        not exists (
            select 1 from conversions
            where conversions.person_id = touchpoints.person_id
        )
),

path_steps as (
    select
        path_id,
        markov_state,
        step,
        steps,
        true as is_converting
    from converting_steps
    union all
    select
        path_id,
        markov_state,
        step,
        steps,
        false as is_converting
    from non_converting_steps
),

transitions as (
    select
        '(start)' as from_state,
        path_steps.markov_state as to_state
    from path_steps
    where path_steps.step = 1
    union all
    select
        previous_steps.markov_state as from_state,
        next_steps.markov_state as to_state
    from path_steps as previous_steps
    inner join path_steps as next_steps
        on
            previous_steps.path_id = next_steps.path_id
            and previous_steps.is_converting = next_steps.is_converting
            and previous_steps.step + 1 = next_steps.step
    union all
    select
        path_steps.markov_state as from_state,
        case when path_steps.is_converting then '(conversion)' else '(null)' end as to_state
    from path_steps
    where path_steps.step = path_steps.steps
),

transition_counts as (
    select
        from_state,
        to_state,
        count(*) as transitions_count
    from transitions
    group by
        from_state,
        to_state
),

transition_probabilities as (
    select
        from_state,
        to_state,
        cast(transitions_count as {{ double }})
        / sum(cast(transitions_count as {{ double }})) over (partition by from_state) as probability
    from transition_counts
),

states as (
    select distinct from_state as markov_state
    from transition_counts
    where from_state <> '(start)'
),

-- '(none)': the whole chain; each state: the chain without it.
scenarios as (
    select '(none)' as removed_state
    union all
    select states.markov_state as removed_state
    from states
),

absorbing_states as (
    select '(conversion)' as markov_state
    union all
    select '(null)' as markov_state
),

-- Step 0: the one-step matrix of each scenario, absorbing states looping on themselves.
matrix_0 as {{ materialized_cte_hint() }} (
    select
        scenarios.removed_state,
        transition_probabilities.from_state,
        case
            when transition_probabilities.to_state = scenarios.removed_state then '(null)'
            else transition_probabilities.to_state
        end as to_state,
        sum(transition_probabilities.probability) as probability
    from scenarios
    cross join transition_probabilities
    where transition_probabilities.from_state <> scenarios.removed_state
    group by
        scenarios.removed_state,
        transition_probabilities.from_state,
        case
            when transition_probabilities.to_state = scenarios.removed_state then '(null)'
            else transition_probabilities.to_state
        end
    union all
    select
        scenarios.removed_state,
        absorbing.markov_state as from_state,
        absorbing.markov_state as to_state,
        cast(1 as {{ double }}) as probability
    from scenarios
    cross join absorbing_states as absorbing
),

-- The matrices to the power 2^{{ squarings }} (macros/markov_matrix_power.sql), in absorbed_matrix.
{{ markov_matrix_power_ctes('matrix_0', squarings, 'absorbed_matrix') }},

conversion_probabilities as (
    select
        scenarios.removed_state,
        coalesce(max(absorbed.probability), 0) as conversion_probability
    from scenarios
    left join absorbed_matrix as absorbed
        on
            scenarios.removed_state = absorbed.removed_state
            and absorbed.from_state = '(start)'
            and absorbed.to_state = '(conversion)'
    group by scenarios.removed_state
),

chain as (
    select conversion_probabilities.conversion_probability
    from conversion_probabilities
    where conversion_probabilities.removed_state = '(none)'
),

path_counts as (
    select
        markov_state,
        count(distinct case when is_converting then path_id end) as converting_paths_count,
        count(distinct case when not is_converting then path_id end) as non_converting_paths_count,
        count(*) as touches_count
    from path_steps
    group by markov_state
),

final as (
    select
        states.markov_state,
        cast('{{ var("attribution_markov_states", "channel") }}' as {{ dbt.type_string() }}) as markov_state_kind,
        cast(path_counts.converting_paths_count as {{ dbt.type_bigint() }}) as converting_paths_count,
        cast(path_counts.non_converting_paths_count as {{ dbt.type_bigint() }}) as non_converting_paths_count,
        cast(path_counts.touches_count as {{ dbt.type_bigint() }}) as touches_count,
        cast(chain.conversion_probability as decimal(18, 12)) as conversion_probability,
        cast(without_state.conversion_probability as decimal(18, 12)) as conversion_probability_without_state,
        -- 1 - P(without) / P, never below 0 (removing a state cannot raise the probability; a
        -- negative would be floating-point noise), rounded to 12 decimals so that reruns on the same
        -- data store the same effects.
        cast(
            case
                when chain.conversion_probability > 0
                    then
                        greatest(
                            1 - without_state.conversion_probability / chain.conversion_probability,
                            0
                        )
                else 0
            end as decimal(18, 12)
        ) as removal_effect
    from states
    inner join path_counts
        on states.markov_state = path_counts.markov_state
    inner join conversion_probabilities as without_state
        on states.markov_state = without_state.removed_state
    cross join chain
)

select * from final
