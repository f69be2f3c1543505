{#-
    Channel of each record of `relation` (a CTE or relation with utm_source, utm_medium and fbclid),
    from `seeds/channel_mapping.csv`: the first mapping row (lowest match_order) whose `like` patterns
    match the lower-cased utm_source / utm_medium (a missing value is matched as '(none)') and whose
    has_click_id is empty or equals "fbclid is present". Returns a query of (`key_column`, channel),
    one row per record; the last row of seeds/channel_mapping.csv matches everything, so no record is left without a channel.
-#}
{% macro attribution_channel_lookup(relation, key_column) -%}
    select
        matched.{{ key_column }},
        matched.channel
    from (
        select
            records.{{ key_column }},
            channel_mapping.channel,
            row_number() over (
                partition by records.{{ key_column }}
                order by channel_mapping.match_order
            ) as match_rank
        from {{ relation }} as records
        inner join {{ ref('channel_mapping') }} as channel_mapping
            on
                coalesce(lower(records.utm_source), '(none)') like channel_mapping.utm_source_pattern
                and coalesce(lower(records.utm_medium), '(none)') like channel_mapping.utm_medium_pattern
                and (
                    channel_mapping.has_click_id is null
                    or channel_mapping.has_click_id = (records.fbclid is not null)
                )
    ) as matched
    where matched.match_rank = 1
{%- endmacro %}

{#-
    One-row query: `attribution_settings_hash`, the MD5 of everything attribution results depend on
    besides the data: the lookback and half-life vars and every row of the channel mapping seed.
    Incremental attribution models store it with each row and recompute everything when it changes,
    so editing the seed or a var and rebuilding is all it takes (no --full-refresh needed).
-#}
{% macro attribution_settings_hash() -%}
    select
        md5(
            '{{ var("attribution_lookback_days", 7) }}|{{ var("attribution_half_life_days", 7) }}|'
            || {{ dbt.listagg(
                measure=dbt.concat([
                    "cast(match_order as " ~ dbt.type_string() ~ ")", "'|'",
                    "utm_source_pattern", "'|'",
                    "utm_medium_pattern", "'|'",
                    "coalesce(cast(has_click_id as " ~ dbt.type_string() ~ "), '')", "'|'",
                    "channel",
                ]),
                delimiter_text="';'",
                order_by_clause="order by match_order",
            ) }}
        ) as attribution_settings_hash
    from {{ ref('channel_mapping') }}
{%- endmacro %}

{#- The attribution models of conversion_attribution, in the order reports show them. -#}
{% macro attribution_models() -%}
    {%- set models = ['reported', 'first_touch', 'last_touch', 'linear', 'position_based', 'time_decay'] -%}
    {%- if var('attribution_markov', true) -%}
        {%- do models.append('markov') -%}
    {%- endif -%}
    {{ return(models) }}
{%- endmacro %}

{#- attribution_models() as a query: one row per model, column `attribution_model`. -#}
{% macro attribution_models_query() -%}
    {%- for model_name in attribution_models() %}
    select '{{ model_name }}' as attribution_model
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#-
    The Markov-chain state of a touch of relation `relation` (a CTE with channel and campaign_id):
    its channel, or with var attribution_markov_states = 'campaign' its campaign ((unattributed) when
    it has none).
-#}
{% macro markov_state_of(relation) -%}
    {%- if var('attribution_markov_states', 'channel') == 'campaign' -%}
        coalesce({{ relation }}.campaign_id, '(unattributed)')
    {%- else -%}
        {{ relation }}.channel
    {%- endif -%}
{%- endmacro %}

{#-
    Credit of a conversion in billionths (an integer; 1 000 000 000 = the whole conversion), turned
    into the decimal credit stored in conversion_attribution. Credits are computed in these integer
    units so that the rounding is the same on every engine and the units of one conversion can be
    made to add up to exactly 1 000 000 000.
-#}
{% macro attribution_credit_from_units(units_expression) -%}
    cast(({{ units_expression }}) / 1000000000.0 as decimal(18, 9))
{%- endmacro %}

{#-
    A touch's credit units with the path's rounding remainder: `units` (an expression of units rounded
    down) plus, on the latest touch of the path (touch_position = touches_in_path), what the rounding
    lost over the conversion's touches, so one conversion's units add up to exactly 1 000 000 000.
    `touches` is the relation with touch_position and touches_in_path; `total_units` the sum of `units`
    over the conversion's touches (a column of a group-by joined to it).
-#}
{% macro units_with_rounding_remainder(units, touches, total_units) -%}
    {{ units }} + case
        when {{ touches }}.touch_position = {{ touches }}.touches_in_path then 1000000000 - {{ total_units }}
        else 0
    end
{%- endmacro %}

{#-
    Query: the touches of each Markov state in each path of `relation` (conversion_id, channel and
    campaign_id, one row per touch), as conversion_id, markov_state and touches_of_state. A state's
    removal effect is split evenly over these touches.
-#}
{% macro markov_state_touches(relation) -%}
    select
        {{ relation }}.conversion_id,
        {{ markov_state_of(relation) }} as markov_state,
        count(*) as touches_of_state
    from {{ relation }}
    group by
        {{ relation }}.conversion_id,
        {{ markov_state_of(relation) }}
{%- endmacro %}
