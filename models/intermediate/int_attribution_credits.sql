{#- postgres_settings: no nested loops on PostgreSQL (macros/planner_settings.sql says why). -#}
{{
    config(
        materialized='incremental',
        unique_key=['conversion_id', 'attribution_model'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        postgres_settings={'enable_nestloop': 'off'},
        pre_hook=[
            "{% if is_incremental() %}{{ delete_rows_where(this, 'not exists (select 1 from '
            ~ ref('int_conversions_valued') ~ ' as conversions where conversions.id = target_rows.conversion_id)') }}{% endif %}",
            "{% if is_incremental() and not var('attribution_markov', true) %}{{ delete_rows_where(this,
            \"target_rows.attribution_model = 'markov'\") }}{% endif %}",
        ],
    )
}}

{%- set half_life_microseconds = (var('attribution_half_life_days', 7) * 86400000000) | int %}
{%- set is_markov = var('attribution_markov', true) %}
{#- The markov share of a touch in billionths, rounded down (before balancing), over a relation with
    touches_in_path, markov_weight and total_markov_weight (the sum of the path's weights). All weights 0
    cannot happen for a path of the chain (each of its states has a positive removal effect); linear
    shares are the fallback should rounding ever make them so. A share less than 0.0005 billionths under a whole billionth counts as that
    billionth: the removal effects have 12 decimals, so an exact share such as 5/8 comes out a hair
    under it. -#}
{%- set markov_units = "case
        when total_markov_weight > 0
            then floor(1000000000.0 * markov_weight / total_markov_weight + 0.0005)
        else floor(1000000000.0 / nullif(touches_in_path, 0))
    end" %}

-- Attribution credits (see the docs block attribution_semantics): one row per conversion × attribution
-- model × credited touchpoint, credits as integer billionths that add up to exactly 1 000 000 000 per
-- conversion and model. Values are not stored here (conversion_attribution applies them), so exchange
-- rates can change without a recompute.
--
-- Incremental (delete+insert on conversion_id and attribution_model). A run recomputes every model's
-- rows of every conversion of a key (conversion_type, event_id) with a copy loaded since the last run (a
-- late copy can re-cluster the key: its conversions get new ids even when their own copies are old),
-- and of every conversion of a person with a touchpoint loaded since then (a late touch can enter an old
-- conversion's window); all of them when the channel mapping or an attribution var changed (the
-- attribution_settings_hash of the rows other than markov). The markov rows also depend on the Markov
-- removal effects, which any new path can change: their attribution_settings_hash also covers the
-- effects, and when it differs from the current one the run recomputes the markov rows of every other
-- conversion too, from the path stored in its linear rows (linear credits every touch of the window, with
-- its position, channel and campaign) and the new effects, without reading the touchpoints again. Runs
-- that leave the effects as they were recompute no markov row beyond the conversions above. A pre-hook
-- deletes the credits of conversions that no longer exist, and the markov rows when var
-- attribution_markov is false. A full refresh gives the same rows.
with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
),

-- A parent whatever var attribution_markov says (empty when it is false), so the graph does not
-- depend on a var.
markov_effects as (
    select * from {{ ref('int_attribution_markov_effects') }}
),

base_settings as (
    {{ attribution_settings_hash() }}
),

{% if var('attribution_markov', true) -%}
    markov_fingerprint as (
        select
            {{ dbt.listagg(
                measure=dbt.concat([
                    "markov_effects.markov_state", "'='",
                    "cast(markov_effects.removal_effect as " ~ dbt.type_string() ~ ")",
                ]),
                delimiter_text="';'",
                order_by_clause="order by markov_effects.markov_state",
            ) }} as removal_effects
        from markov_effects
    ),

    -- attribution_settings_hash: the attribution settings, stored with every row but markov's.
    -- markov_settings_hash: the settings plus the Markov removal effects, stored with the markov rows
    -- (their credits depend on all paths, through the effects).
    settings as (
        select
            base_settings.attribution_settings_hash,
            md5(
                base_settings.attribution_settings_hash || '|markov|'
                || '{{ var("attribution_markov_states", "channel") }}|'
                || coalesce(markov_fingerprint.removal_effects, '')
            ) as markov_settings_hash
        from base_settings
        cross join markov_fingerprint
    ),

{%- else %}
    settings as (
        select
            base_settings.attribution_settings_hash,
            cast(null as {{ dbt.type_string() }}) as markov_settings_hash
        from base_settings
    ),
{%- endif %}

conversions_with_loads as (
    select
        conversions.id,
        conversions.conversion_key,
        conversions.person_id,
        conversions.campaign_id,
        conversions.ad_set_id,
        conversions.ad_id,
        conversions.utm_source,
        conversions.utm_medium,
        conversions.utm_campaign,
        conversions.utm_content,
        conversions.fbclid,
        conversions.conversion_time,
        -- The latest load of the copies the conversion is built from (a later copy can fill attributes).
        conversions.last_loaded_at as conversion_loaded_at
    from conversions
),

{% if is_incremental() -%}
    previous_run as (
        select
            coalesce(max(inputs_loaded_at), cast('1970-01-01' as {{ dbt.type_timestamp() }})) as loaded_at,
            coalesce(
                max(
                    case
                        when
                            attribution_model <> 'markov'
                            and attribution_settings_hash <> (select settings.attribution_settings_hash from settings)
                            then 1
                        else 0
                    end
                ) = 1,
                false
            ) as is_settings_changed,
            -- The stored markov rows were computed with other removal effects (or there are none).
            coalesce(
                max(
                    case
                        when attribution_model = 'markov'
                            then
                                case
                                    when
                                        attribution_settings_hash
                                        = (select settings.markov_settings_hash from settings)
                                        then 0
                                    else 1
                                end
                    end
                ) = 1,
                true
            ) as is_markov_changed
        from {{ this }}
    ),

    persons_with_new_touchpoints as (
        select distinct touchpoints.person_id
        from touchpoints
        where touchpoints._loaded_at > (select previous_run.loaded_at from previous_run)
    ),

    -- The keys first, then one `in`: PostgreSQL cannot turn an `in` under an `or` into a join, and with
    -- more keys than fit its hash memory it compared every conversion with every key.
    keys_to_compute as (
        select loaded.conversion_key
        from conversions_with_loads as loaded
        where
            loaded.conversion_loaded_at > (select previous_run.loaded_at from previous_run)
            or (select previous_run.is_settings_changed from previous_run)

        union

        select person_conversions.conversion_key
        from conversions_with_loads as person_conversions
        inner join persons_with_new_touchpoints
            on person_conversions.person_id = persons_with_new_touchpoints.person_id
    ),

    conversions_to_compute as (
        select conversions_with_loads.*
        from conversions_with_loads
        where conversions_with_loads.conversion_key in (select keys_to_compute.conversion_key from keys_to_compute)
    ),
{%- else -%}
    conversions_to_compute as (
        select * from conversions_with_loads
    ),
{%- endif %}

-- Touchpoints in each conversion's lookback window, exactly:
-- conversion_time - lookback < touchpoint_time <= conversion_time (epoch microseconds, not calendar units).
-- What the credits need per path (its length, the sums of its weights and of its rounded units) comes
-- from group-bys joined back, not window functions: over a million paths of a few touches each DuckDB's
-- windows cost more than the rest of the model (BENCHMARKS.md).
paths as (
    select
        conversions_to_compute.id as conversion_id,
        conversions_to_compute.person_id,
        touchpoints.touchpoint_event_id,
        touchpoints.campaign_id,
        touchpoints.ad_set_id,
        touchpoints.ad_id,
        touchpoints.utm_source,
        touchpoints.utm_medium,
        touchpoints.utm_campaign,
        touchpoints.utm_content,
        touchpoints.channel,
        touchpoints.is_ad_click,
        {{ epoch_microseconds('conversions_to_compute.conversion_time') }}
        - {{ epoch_microseconds('touchpoints.touchpoint_time') }} as microseconds_before_conversion,
        row_number() over (
            partition by conversions_to_compute.id
            order by touchpoints.touchpoint_time, touchpoints.touchpoint_event_id
        ) as touch_position,
        touchpoints.touchpoint_time,
        conversions_to_compute.conversion_time,
        touchpoints._loaded_at as touchpoint_loaded_at
    from conversions_to_compute
    inner join touchpoints
        on {{ touch_in_lookback_window('conversions_to_compute', 'touchpoints') }}
),

-- Per conversion: its touches in the window, hours since the latest ad click there, and the latest load
-- of any input.
path_summaries as (
    select
        conversions_to_compute.id as conversion_id,
        count(paths.conversion_id) as touches_in_path,
        -- Millionths of an hour rounded half up in integers ((2m + 3600) div 7200, m >= 0), so every
        -- engine rounds the frequent exact halves alike (a double would round them either way).
        cast(
            cast(
                floor(
                    (2 * min(case when paths.is_ad_click then paths.microseconds_before_conversion end) + 3600)
                    / 7200.0
                ) as {{ dbt.type_bigint() }}
            ) / 1000000.0 as decimal(18, 6)
        ) as last_click_to_conversion_hours,
        -- The latest load of any input of the conversion's credits: the incremental watermark.
        greatest(max(conversions_to_compute.conversion_loaded_at), max(paths.touchpoint_loaded_at))
            as inputs_loaded_at
    from conversions_to_compute
    left join paths
        on conversions_to_compute.id = paths.conversion_id
    group by conversions_to_compute.id
),

-- time_decay weight of each touch: 2^(-Δt / half-life), Δt = conversion_time - touchpoint_time.
-- markov weight of each touch: the removal effect of its state (channel or campaign) divided by the
-- number of touches of that state in the path, so each state's share of the conversion is
-- proportional to its removal effect, split evenly over its touches.
state_touches as (
    {{ markov_state_touches('paths') }}
),

weighted_paths as (
    select
        paths.*,
        path_summaries.touches_in_path,
        coalesce(markov_effects.removal_effect, 0) / state_touches.touches_of_state as markov_weight,
        power(2.0, -1.0 * paths.microseconds_before_conversion / {{ half_life_microseconds }}) as decay_weight
    from paths
    inner join path_summaries
        on paths.conversion_id = path_summaries.conversion_id
    inner join state_touches
        on
            paths.conversion_id = state_touches.conversion_id
            and {{ markov_state_of('paths') }} = state_touches.markov_state
    left join markov_effects
        on {{ markov_state_of('paths') }} = markov_effects.markov_state
),

-- Per path: the sums of its touches' markov and time_decay weights.
weight_totals as (
    select
        weighted_paths.conversion_id,
        sum(weighted_paths.markov_weight) as total_markov_weight,
        sum(weighted_paths.decay_weight) as total_decay_weight
    from weighted_paths
    group by weighted_paths.conversion_id
),

{#- Each division by touches_in_path has nullif(…, 0): the rows here all have touches, but Spark (ANSI mode)
    may evaluate a credit's filter below the join with path_summaries, on the rows of conversions without
    touches too, and fail there with DIVIDE_BY_ZERO. -#}
{%- set touch_models = {
    'first_touch': "case when touch_position = 1 then 1000000000 else 0 end",
    'last_touch': "case when touch_position = touches_in_path then 1000000000 else 0 end",
    'linear': "floor(1000000000.0 / nullif(touches_in_path, 0))",
    'position_based': "case
            when touches_in_path = 1 then 1000000000
            when touches_in_path = 2 then 500000000
            when touch_position = 1 or touch_position = touches_in_path then 400000000
            else floor(200000000.0 / (touches_in_path - 2))
        end",
    'time_decay': "floor(1000000000.0 * decay_weight / total_decay_weight)",
} %}
{%- if is_markov %}
    {%- do touch_models.update({'markov': markov_units}) %}
{%- endif %}

-- Each touch's units in every attribution model, rounded down: one row per touch with a column per model
-- (the sums per path then run once over the touches, not once per model over six copies of them).
touch_units as (
    select
        {%- for model_name, units in touch_models.items() %}
            cast({{ units }} as {{ dbt.type_bigint() }}) as {{ model_name }}_units,
        {%- endfor %}
        weighted_paths.*
    from weighted_paths
    inner join weight_totals
        on weighted_paths.conversion_id = weight_totals.conversion_id
),

-- Per path and model: the sum of the rounded-down units.
unit_totals as (
    select
        {%- for model_name in touch_models %}
            sum(touch_units.{{ model_name }}_units) as {{ model_name }}_units,
        {%- endfor %}
        touch_units.conversion_id
    from touch_units
    group by touch_units.conversion_id
),

-- The rounding remainder (units lost by rounding down) goes to the latest touch of the path, so the
-- units of one conversion and model add up to exactly 1 000 000 000; with the conversion's path summary.
touch_units_balanced as (
    select
        touch_units.*,
        {%- for model_name in touch_models %}
            {%- set units = 'touch_units.' ~ model_name ~ '_units' %}
            {%- set total = 'unit_totals.' ~ model_name ~ '_units' %}
            {{ units_with_rounding_remainder(units, 'touch_units', total) }} as {{ model_name }}_credit_units,
        {%- endfor %}
        path_summaries.last_click_to_conversion_hours,
        path_summaries.inputs_loaded_at
    from touch_units
    inner join unit_totals
        on touch_units.conversion_id = unit_totals.conversion_id
    inner join path_summaries
        on touch_units.conversion_id = path_summaries.conversion_id
),

-- One row per conversion × model × touch with credit.
credited_touches as (
    {%- for model_name in touch_models %}
        select
            conversion_id,
            person_id,
            '{{ model_name }}' as attribution_model,
            touchpoint_event_id,
            coalesce(campaign_id, '(unattributed)') as campaign_id,
            ad_set_id,
            ad_id,
            utm_source,
            utm_medium,
            utm_campaign,
            utm_content,
            channel,
            touch_position,
            touches_in_path,
            {{ model_name }}_credit_units as credit_units,
            last_click_to_conversion_hours,
            touchpoint_time,
            conversion_time,
            inputs_loaded_at
        from touch_units_balanced
        where {{ model_name }}_credit_units > 0
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- Conversions without any touchpoint in the window (path_summaries counted none), found once for all
-- attribution models.
conversions_without_touches as (
    select
        conversions_to_compute.id,
        conversions_to_compute.person_id,
        conversions_to_compute.conversion_time
    from conversions_to_compute
    inner join path_summaries
        on conversions_to_compute.id = path_summaries.conversion_id
    where path_summaries.touches_in_path = 0
),

-- Their whole credit goes to (unattributed) / direct in every attribution model.
unattributed_conversions as (
    {%- for model_name in attribution_models() if model_name != 'reported' %}
        select
            conversions_without_touches.id as conversion_id,
            conversions_without_touches.person_id,
            '{{ model_name }}' as attribution_model,
            cast(null as {{ dbt.type_string() }}) as touchpoint_event_id,
            '(unattributed)' as campaign_id,
            cast(null as {{ dbt.type_string() }}) as ad_set_id,
            cast(null as {{ dbt.type_string() }}) as ad_id,
            cast(null as {{ dbt.type_string() }}) as utm_source,
            cast(null as {{ dbt.type_string() }}) as utm_medium,
            cast(null as {{ dbt.type_string() }}) as utm_campaign,
            cast(null as {{ dbt.type_string() }}) as utm_content,
            'direct' as channel,
            cast(null as {{ dbt.type_bigint() }}) as touch_position,
            cast(0 as {{ dbt.type_bigint() }}) as touches_in_path,
            cast(1000000000 as {{ dbt.type_bigint() }}) as credit_units,
            cast(null as {{ dbt.type_timestamp() }}) as touchpoint_time,
            conversions_without_touches.conversion_time
        from conversions_without_touches
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
),

-- reported: the campaign and tags on the conversion row itself (no campaign_id: (unattributed)).
reported_channels as (
    {{ attribution_channel_lookup('conversions_to_compute', 'id') }}
),

reported_credits as (
    select
        conversions_to_compute.id as conversion_id,
        conversions_to_compute.person_id,
        'reported' as attribution_model,
        cast(null as {{ dbt.type_string() }}) as touchpoint_event_id,
        coalesce(conversions_to_compute.campaign_id, '(unattributed)') as campaign_id,
        conversions_to_compute.ad_set_id,
        conversions_to_compute.ad_id,
        conversions_to_compute.utm_source,
        conversions_to_compute.utm_medium,
        conversions_to_compute.utm_campaign,
        conversions_to_compute.utm_content,
        -- 'other' only if the seed lost its catch-all row (a test flags that).
        coalesce(reported_channels.channel, 'other') as channel,
        cast(null as {{ dbt.type_bigint() }}) as touch_position,
        cast(null as {{ dbt.type_bigint() }}) as touches_in_path,
        cast(1000000000 as {{ dbt.type_bigint() }}) as credit_units,
        cast(null as {{ dbt.type_timestamp() }}) as touchpoint_time,
        conversions_to_compute.conversion_time
    from conversions_to_compute
    left join reported_channels
        on conversions_to_compute.id = reported_channels.id
),

-- Conversions credited whole (reported, and no touch in the window), with their path summary.
whole_credits as (
    select * from reported_credits
    union all
    select * from unattributed_conversions
),

computed_rows as (
    select * from credited_touches
    union all
    select
        whole_credits.conversion_id,
        whole_credits.person_id,
        whole_credits.attribution_model,
        whole_credits.touchpoint_event_id,
        whole_credits.campaign_id,
        whole_credits.ad_set_id,
        whole_credits.ad_id,
        whole_credits.utm_source,
        whole_credits.utm_medium,
        whole_credits.utm_campaign,
        whole_credits.utm_content,
        whole_credits.channel,
        whole_credits.touch_position,
        whole_credits.touches_in_path,
        whole_credits.credit_units,
        path_summaries.last_click_to_conversion_hours,
        whole_credits.touchpoint_time,
        whole_credits.conversion_time,
        path_summaries.inputs_loaded_at
    from whole_credits
    inner join path_summaries
        on whole_credits.conversion_id = path_summaries.conversion_id
),

{% if is_incremental() and is_markov -%}
    -- New removal effects: the markov rows of the conversions not recomputed above, from the path their
    -- stored linear rows hold (one row per touch of the window: position, channel, campaign, times; a
    -- single row with touches_in_path 0 for a conversion without touches). Their other rows stay.
    stored_paths as (
        select stored.*
        from {{ this }} as stored
        where
            stored.attribution_model = 'linear'
            and (select previous_run.is_markov_changed from previous_run)
            and not (select previous_run.is_settings_changed from previous_run)
            and not exists (
                select 1 from conversions_to_compute
                where conversions_to_compute.id = stored.conversion_id
            )
    ),

    -- As state_touches, weighted_paths and weight_totals (the stored campaign_id is already coalesced to
    -- (unattributed), as the state is).
    stored_touches as (
        select stored_paths.*
        from stored_paths
        where stored_paths.touches_in_path > 0
    ),

    stored_state_touches as (
        {{ markov_state_touches('stored_touches') }}
    ),

    stored_weighted_paths as (
        select
            stored_touches.*,
            coalesce(markov_effects.removal_effect, 0) / stored_state_touches.touches_of_state as markov_weight
        from stored_touches
        inner join stored_state_touches
            on
                stored_touches.conversion_id = stored_state_touches.conversion_id
                and {{ markov_state_of('stored_touches') }} = stored_state_touches.markov_state
        left join markov_effects
            on {{ markov_state_of('stored_touches') }} = markov_effects.markov_state
    ),

    stored_weight_totals as (
        select
            stored_weighted_paths.conversion_id,
            sum(stored_weighted_paths.markov_weight) as total_markov_weight
        from stored_weighted_paths
        group by stored_weighted_paths.conversion_id
    ),

    stored_markov_units as (
        select
            stored_weighted_paths.*,
            cast({{ markov_units }} as {{ dbt.type_bigint() }}) as rounded_units
        from stored_weighted_paths
        inner join stored_weight_totals
            on stored_weighted_paths.conversion_id = stored_weight_totals.conversion_id
    ),

    stored_unit_totals as (
        select
            stored_markov_units.conversion_id,
            sum(stored_markov_units.rounded_units) as rounded_units
        from stored_markov_units
        group by stored_markov_units.conversion_id
    ),

    -- As touch_units_balanced: the rounding remainder goes to the latest touch.
    stored_markov_balanced as (
        select
            stored_markov_units.*,
            {{ units_with_rounding_remainder(
                'stored_markov_units.rounded_units', 'stored_markov_units', 'stored_unit_totals.rounded_units'
            ) }} as markov_credit_units
        from stored_markov_units
        inner join stored_unit_totals
            on stored_markov_units.conversion_id = stored_unit_totals.conversion_id
    ),

    recomputed_markov_rows as (
        {%- for relation, units, condition in [
            ('stored_markov_balanced', 'stored_markov_balanced.markov_credit_units',
                'stored_markov_balanced.markov_credit_units > 0'),
            ('stored_paths', 'stored_paths.credit_units', 'stored_paths.touches_in_path = 0'),
        ] %}
            select
                {{ relation }}.conversion_id,
                {{ relation }}.person_id,
                'markov' as attribution_model,
                {{ relation }}.touchpoint_event_id,
                {{ relation }}.campaign_id,
                {{ relation }}.ad_set_id,
                {{ relation }}.ad_id,
                {{ relation }}.utm_source,
                {{ relation }}.utm_medium,
                {{ relation }}.utm_campaign,
                {{ relation }}.utm_content,
                {{ relation }}.channel,
                {{ relation }}.touch_position,
                {{ relation }}.touches_in_path,
                {{ units }} as credit_units,
                {{ relation }}.last_click_to_conversion_hours,
                {{ relation }}.touchpoint_time,
                {{ relation }}.conversion_time,
                {{ relation }}.inputs_loaded_at
            from {{ relation }}
            where {{ condition }}
            {%- if not loop.last %}
                union all
            {%- endif %}
        {%- endfor %}
    ),

    credit_rows as (
        select * from computed_rows
        union all
        select * from recomputed_markov_rows
    ),
{%- else %}
    credit_rows as (
        select * from computed_rows
    ),
{%- endif %}

final as (
    select
        {{ uuid_from_columns([
            'credit_rows.conversion_id', 'credit_rows.attribution_model', 'credit_rows.touchpoint_event_id',
        ]) }} as id,
        credit_rows.conversion_id,
        credit_rows.person_id,
        credit_rows.attribution_model,
        credit_rows.touchpoint_event_id,
        credit_rows.campaign_id,
        credit_rows.ad_set_id,
        credit_rows.ad_id,
        credit_rows.utm_source,
        credit_rows.utm_medium,
        credit_rows.utm_campaign,
        credit_rows.utm_content,
        credit_rows.channel,
        case
            when credit_rows.attribution_model = 'markov' then settings.markov_settings_hash
            else settings.attribution_settings_hash
        end as attribution_settings_hash,
        cast(credit_rows.touch_position as {{ dbt.type_bigint() }}) as touch_position,
        cast(credit_rows.touches_in_path as {{ dbt.type_bigint() }}) as touches_in_path,
        cast(credit_rows.credit_units as {{ dbt.type_bigint() }}) as credit_units,
        {{ attribution_credit_from_units('credit_rows.credit_units') }} as credit,
        credit_rows.last_click_to_conversion_hours,
        credit_rows.touchpoint_time,
        credit_rows.conversion_time,
        credit_rows.inputs_loaded_at
    from credit_rows
    cross join settings
)

select * from final
