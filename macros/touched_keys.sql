{#-
    The state specs (macros/incremental_state.sql) of the incremental marts without load times of their
    own: conversion_attribution (by conversion), conversion_metrics (by period type and period) and the
    conversion rollups (by period). Each says which parents' watermarks it keeps, which settings its
    rows depend on (a change recomputes every row) and which keys a run recomputes. The reasoning for
    each rule is in the model's header comment.
-#}

{#- A state spec's query of the conversion keys (conversion_type, event_id) with a copy loaded after the
    previous run's watermark `conversions_loaded_at` of `conversions` (int_conversions_valued): a late copy
    can re-cluster its key, so the callers widen a change to every conversion of the key. -#}
{% macro conversion_keys_loaded_since(conversions) -%}
    select loaded.conversion_key
    from {{ conversions }} as loaded
    where loaded.last_loaded_at > {{ previous_watermark('conversions_loaded_at') }}
{%- endmacro %}

{#- A fingerprint: the MD5 of SQL string expressions (a null counts as empty), in order. -#}
{% macro incremental_fingerprint(parts) -%}
    {%- set pieces = [] -%}
    {%- for part in parts -%}
        {%- if not loop.first -%}{%- do pieces.append("'|'") -%}{%- endif -%}
        {%- do pieces.append("coalesce(" ~ part ~ ", '')") -%}
    {%- endfor -%}
    md5({{ dbt.concat(pieces) }})
{%- endmacro %}

{#-
    Query of (person_id, touched_at): what the conversions loaded at or after `loaded_since` (a
    timestamp expression) can change in aggregates of conversion_event.
    * Every copy (int_conversion_identities) of every conversion key with a conversion loaded since:
      a new copy can re-cluster its key, so a conversion can move, split or disappear; its old and new
      conversion_time are both times of the key's copies, which therefore cover every period it left
      or entered (and its old and new person).
    * Whether a person is new or repeat in a period depends on their first conversion of the type
      (restricted to `first_of_types` when given). Of the periods holding conversions that did not
      change, only the one of the earliest such conversion can flip, and only when a changed copy of
      the same person and type is earlier than it: then that earliest unchanged conversion.
    `copies` and `conversions` name those two models' relations for a caller that may not ref() them
    (a data test's scope, test_scope_conversion_periods). With `strictly_after`, conversions loaded at
    `loaded_since` itself do not count (a state spec's watermark: conversion_metrics_incremental_state).
-#}
{% macro changed_conversion_instants(
    loaded_since, first_of_types=none, copies=none, conversions=none, strictly_after=false
) -%}
    {%- set since = ('> ' if strictly_after else '>= ') ~ loaded_since -%}
    {%- set copies = copies or ref('int_conversion_identities') -%}
    {%- set conversions = conversions or ref('conversion_event') -%}
    {%- set changed_copies -%}
        select
            copies.person_id,
            copies.conversion_type,
            copies.conversion_time
        from {{ copies }} as copies
        where exists (
            select 1
            from {{ conversions }} as changed
            where
                changed.conversion_key = copies.conversion_key
                and changed.last_loaded_at {{ since }}
        )
    {%- endset -%}
    select
        changed_copies.person_id,
        changed_copies.conversion_time as touched_at
    from ({{ changed_copies }}) as changed_copies

    union all

    select
        unchanged.person_id,
        min(unchanged.conversion_time) as touched_at
    from {{ conversions }} as unchanged
    inner join (
        select
            changed_copies.person_id,
            changed_copies.conversion_type,
            min(changed_copies.conversion_time) as earliest_changed_at
        from ({{ changed_copies }}) as changed_copies
        {%- if first_of_types %}
            where changed_copies.conversion_type in ('{{ first_of_types | join("', '") }}')
        {%- endif %}
        group by
            changed_copies.person_id,
            changed_copies.conversion_type
    ) as changed_pairs
        on
            unchanged.person_id = changed_pairs.person_id
            and unchanged.conversion_type = changed_pairs.conversion_type
    where
        not exists (
            select 1
            from {{ conversions }} as changed
            where
                changed.conversion_key = unchanged.conversion_key
                and changed.last_loaded_at {{ since }}
        )
    group by
        unchanged.person_id,
        unchanged.conversion_type,
        changed_pairs.earliest_changed_at
    having min(unchanged.conversion_time) > changed_pairs.earliest_changed_at
{%- endmacro %}

{#- The attribution_settings_hash of int_attribution_credits' rows: of the rows other than markov (the
    attribution settings), or with `markov` of the markov rows (the settings and the removal effects), as
    a scalar subquery; null when there is no such row. -#}
{% macro attribution_credits_settings_hash(markov=false) -%}
    (
        select max(credits.attribution_settings_hash)
        from {{ ref('int_attribution_credits') }} as credits
        where credits.attribution_model {{ '=' if markov else '<>' }} 'markov'
    )
{%- endmacro %}

{#- conversion_attribution: delete+insert by conversion and attribution model. -#}
{% macro conversion_attribution_incremental_state() -%}
    {%- set credits = ref('int_attribution_credits') -%}
    {%- set conversions = ref('int_conversions_valued') -%}
    {%- set models -%}
        ({{ attribution_models_query() }})
    {%- endset -%}
    {%- set markov_changed -%}
        coalesce({{ attribution_credits_settings_hash(markov=true) }}, '')
        <> coalesce({{ incremental_state_value('fingerprint', watermark='markov_settings') }}, '')
    {%- endset -%}
    {%- set touched_keys -%}
        -- Every model of the conversions of a key with a copy loaded since the last run: new, revalued or
        -- with new attributes, and re-clustered (a late copy gives the key's conversions new ids, also
        -- those whose own copies are old).
        select
            conversions.id as conversion_id,
            models.attribution_model
        from {{ conversions }} as conversions
        cross join {{ models }} as models
        where conversions.conversion_key in (
            {{ conversion_keys_loaded_since(conversions) }}
        )

        union

        -- Every model of the conversions whose credits int_attribution_credits recomputed since with a
        -- newer input: a touchpoint that entered the lookback window, or a new copy of the conversion.
        select
            recomputed.conversion_id,
            models.attribution_model
        from (
            select distinct credits.conversion_id
            from {{ credits }} as credits
            where credits.inputs_loaded_at > {{ previous_watermark('credits_loaded_at') }}
        ) as recomputed
        cross join {{ models }} as models

        union

        -- Conversions that no longer exist (their key was re-clustered): their rows are deleted.
        select
            previous_rows.conversion_id,
            models.attribution_model
        from {{ this }} as previous_rows
        cross join {{ models }} as models
        where
            previous_rows.attribution_model = 'reported'
            and not exists (
                select 1
                from {{ conversions }} as conversions
                where conversions.id = previous_rows.conversion_id
            )

        union

        -- When the markov credits were recomputed with new removal effects (their settings hash is not
        -- the one of the last run): the markov rows of the conversions whose markov credits differ from
        -- the stored ones (many paths, one channel or campaign for instance, keep theirs).
        select
            coalesce(current_markov.conversion_id, stored_markov.conversion_id) as conversion_id,
            'markov' as attribution_model
        from (
            select
                credits.conversion_id,
                credits.touchpoint_event_id,
                credits.credit
            from {{ credits }} as credits
            where credits.attribution_model = 'markov' and {{ markov_changed }}
        ) as current_markov
        full outer join (
            select
                previous_rows.conversion_id,
                previous_rows.touchpoint_event_id,
                previous_rows.credit
            from {{ this }} as previous_rows
            where previous_rows.attribution_model = 'markov' and {{ markov_changed }}
        ) as stored_markov
            on
                current_markov.conversion_id = stored_markov.conversion_id
                and coalesce(current_markov.touchpoint_event_id, '') = coalesce(stored_markov.touchpoint_event_id, '')
        where
            current_markov.conversion_id is null
            or stored_markov.conversion_id is null
            or current_markov.credit <> stored_markov.credit
    {%- endset -%}
    {{ return({
        'unique_key': ['conversion_id', 'attribution_model'],
        'fingerprint': incremental_fingerprint([
            attribution_credits_settings_hash(),
            "'" ~ var('reporting_currency', 'USD') ~ "'",
        ]),
        'watermarks': {
            'conversions_loaded_at': [conversions, 'last_loaded_at'],
            'credits_loaded_at': [credits, 'inputs_loaded_at'],
        },
        'fingerprints': {
            'markov_settings': attribution_credits_settings_hash(markov=true),
        },
        'touched_keys': touched_keys,
    }) }}
{%- endmacro %}

{#- attribution_paths: delete+insert by conversion. A conversion's path is its touches in the lookback
    window, the touches its credits are computed from, so it changes exactly when conversion_attribution's
    rows of the conversion do, less the markov rule (a path does not depend on the removal effects). -#}
{% macro attribution_paths_incremental_state() -%}
    {%- set credits = ref('int_attribution_credits') -%}
    {%- set conversions = ref('int_conversions_valued') -%}
    {%- set touched_keys -%}
        -- The conversions of a key with a copy loaded since the last run: new, revalued or with new
        -- attributes, and re-clustered (new ids, also for the key's conversions whose own copies are old).
        select conversions.id as conversion_id
        from {{ conversions }} as conversions
        where conversions.conversion_key in (
            {{ conversion_keys_loaded_since(conversions) }}
        )

        union

        -- The conversions whose credits int_attribution_credits recomputed since with a newer input: a
        -- touchpoint that entered the lookback window, or a new copy of the conversion.
        select credits.conversion_id
        from {{ credits }} as credits
        where credits.inputs_loaded_at > {{ previous_watermark('credits_loaded_at') }}

        union

        -- Conversions that no longer exist (their key was re-clustered): their rows are deleted.
        select previous_rows.conversion_id
        from {{ this }} as previous_rows
        where not exists (
            select 1
            from {{ conversions }} as conversions
            where conversions.id = previous_rows.conversion_id
        )
    {%- endset -%}
    {{ return({
        'unique_key': ['conversion_id'],
        'fingerprint': incremental_fingerprint([
            attribution_credits_settings_hash(),
            "'" ~ var('reporting_currency', 'USD') ~ "'",
        ]),
        'watermarks': {
            'conversions_loaded_at': [conversions, 'last_loaded_at'],
            'credits_loaded_at': [credits, 'inputs_loaded_at'],
        },
        'touched_keys': touched_keys,
    }) }}
{%- endmacro %}

{#- attribution_paths_non_converting: delete+insert by person. A person's row depends on their touches and
    on whether they have a conversion at all; both move only with a load (a touch loaded or stitched to
    them since, a conversion loaded since) or a relink (touches and conversions moved away). -#}
{% macro attribution_paths_non_converting_incremental_state() -%}
    {%- set touchpoints = ref('int_touchpoints') -%}
    {%- set conversions = ref('int_conversions_valued') -%}
    {%- set copies = ref('int_conversion_identities') -%}
    {%- set touched_keys -%}
        -- Persons with a touch loaded since the last run: new touches, and touches stitched to them (a
        -- stitched event counts as loaded when its identity observation landed).
        select touchpoints.person_id
        from {{ touchpoints }} as touchpoints
        where touchpoints._loaded_at > {{ previous_watermark('touchpoints_loaded_at') }}

        union

        -- Persons named by any copy of a conversion key with a copy loaded since: the conversion is theirs
        -- now (the row goes), or was before a copy of another person became the one kept (a row may come).
        select copies.person_id
        from {{ copies }} as copies
        where copies.conversion_key in (
            {{ conversion_keys_loaded_since(conversions) }}
        )

        union

        -- Persons an anonymous id was relinked away from since, and the persons it went to: touches or
        -- conversions left them.
        {{ relinked_persons(since=previous_watermark('relinks_loaded_at')) }}

        union

        -- Stored persons left with no touch (stitched to another person: a pseudo-person of an anonymous id
        -- that got linked) or with a conversion: their rows are only deleted. Two parts, not an `or`
        -- (PostgreSQL would run an `exists` under an `or` once per row).
        select previous_rows.person_id
        from {{ this }} as previous_rows
        where not exists (
            select 1
            from {{ touchpoints }} as touchpoints
            where touchpoints.person_id = previous_rows.person_id
        )

        union

        select previous_rows.person_id
        from {{ this }} as previous_rows
        where exists (
            select 1
            from {{ conversions }} as conversions
            where conversions.person_id = previous_rows.person_id
        )
    {%- endset -%}
    {{ return({
        'unique_key': ['person_id'],
        'fingerprint': incremental_fingerprint([
            '(select max(touchpoints.attribution_settings_hash) from ' ~ touchpoints ~ ' as touchpoints)',
        ]),
        'watermarks': {
            'touchpoints_loaded_at': [touchpoints, '_loaded_at'],
            'conversions_loaded_at': [conversions, 'last_loaded_at'],
            'relinks_loaded_at': [ref('int_identity_previous_persons'), 'relinked_loaded_at'],
        },
        'touched_keys': touched_keys,
    }) }}
{%- endmacro %}

{#- conversion_metrics, on an incremental run: `where` the local day `day_expression` is a day of a touched
    period (CTE covered_days); nothing otherwise. -#}
{% macro covered_days_filter(is_incremental_run, day_expression) -%}
    {%- if is_incremental_run -%}
        where {{ day_expression }} in (select covered_days.period_date from covered_days)
    {%- endif -%}
{%- endmacro %}

{#- conversion_metrics, on an incremental run: `where` the row of `relation` (with period_type, period_date
    and, with `by_model`, attribution_model) belongs to a touched key (CTE touched_keys), or without
    `by_model` to a touched period (CTE touched_periods); nothing otherwise. -#}
{% macro touched_keys_filter(is_incremental_run, relation, by_model=true) -%}
    {%- if is_incremental_run -%}
        where exists (
            select 1 from {{ 'touched_keys' if by_model else 'touched_periods' }} as touched
            where
                touched.period_type = {{ relation }}.period_type
                and touched.period_date = {{ relation }}.period_date
                {%- if by_model %}
                    and touched.attribution_model = {{ relation }}.attribution_model
                {%- endif %}
        )
    {%- endif -%}
{%- endmacro %}

{#- conversion_metrics: the attribution models (as `period_models.attribution_model`) of the rows of
    `relation` (period_type, period_date; the same in every model): on an incremental run the touched keys
    of its period (CTE touched_keys), else every model (CTE attribution_models). -#}
{% macro join_period_models(is_incremental_run, relation) -%}
    {%- if is_incremental_run -%}
        inner join touched_keys as period_models
            on
                {{ relation }}.period_type = period_models.period_type
                and {{ relation }}.period_date = period_models.period_date
    {%- else -%}
        cross join attribution_models as period_models
    {%- endif -%}
{%- endmacro %}

{#- conversion_metrics: delete+insert by (period_type, period_date, attribution_model).
    Its inputs count as changed when their time is after the previous run's watermark (`>`, as in every
    incremental model): a watermark here is the largest time of a parent as the previous run read it,
    recorded after that run from the same, finished parent tables, and whatever changes a parent's row
    later gives it a later time. Rows at the watermark itself are the latest load that run already
    counted.
    The rules below touch a period in every attribution model. The Markov removal effects shape only the
    markov rows: they are a fingerprint of their own (`markov_settings`, the one conversion_attribution's
    markov rows were computed with, as it recorded it), and when it differs from the last run's the markov
    rows of every period are recomputed, not the other models' rows. Not only the periods whose markov
    credits changed: new effects change the credit of every conversion whose path holds two states or more,
    and every day has such conversions (at 10M events, 345,269 of 548,516 conversions, on each of the 61
    days), so a comparison would find every period. -#}
{% macro conversion_metrics_incremental_state() -%}
    {%- set conversions = ref('conversion_event') -%}
    {%- set credits = ref('int_attribution_credits') -%}
    {%- set touchpoints = ref('int_touchpoints') -%}
    {%- set funnels = ref('conversion_funnel') -%}
    {%- set ad_spend = ref('int_attribution_ad_spend_daily') -%}
    {%- set rules = ref('optimization_rules') -%}
    {%- set attribution = ref('conversion_attribution') -%}
    {%- set markov_settings = incremental_state_value(
        'fingerprint', model_name='conversion_attribution', watermark='markov_settings'
    ) -%}
    {%- set markov_changed -%}
        coalesce({{ markov_settings }}, '')
        <> coalesce({{ incremental_state_value('fingerprint', watermark='markov_settings') }}, '')
    {%- endset -%}
    {%- set touched_keys -%}
        with period_types as (
            {{ period_types_query() }}
        ),

        changed_conversions as (
            {{ changed_conversion_instants(previous_watermark('conversions_loaded_at'), ['purchase'], strictly_after=true) }}
        ),

        -- Instants whose periods (of every type) are recomputed.
        touched_instants as (
            select changed_conversions.touched_at
            from changed_conversions

            union all

            -- Conversions whose credits were recomputed with a newer input (a touch entered the window).
            select credits.conversion_time as touched_at
            from {{ credits }} as credits
            where credits.inputs_loaded_at > {{ previous_watermark('credits_loaded_at') }}

            union all

            -- Conversions Meta accepted since the last run (is_optimized, updated_at).
            select conversions.conversion_time as touched_at
            from {{ conversions }} as conversions
            where conversions.optimized_at > {{ previous_watermark('conversions_optimized_at') }}

            union all

            -- Touchpoints of a campaign loaded since (reached persons).
            select touchpoints.touchpoint_time as touched_at
            from {{ touchpoints }} as touchpoints
            where
                touchpoints.campaign_id is not null
                and touchpoints._loaded_at > {{ previous_watermark('touchpoints_loaded_at') }}

            union all

            -- Funnel rows updated since, and those whose window holds a changed conversion of the person
            -- (a conversion that was a step can disappear without a newer load on the funnel row). Two
            -- selects, not an `exists` under an `or`: PostgreSQL ran that as a subplan per funnel row
            -- (376 s of a 10M-event incremental build), where alone it is a hash semi-join.
            select funnels.started_at as touched_at
            from {{ funnels }} as funnels
            where funnels.updated_at > {{ previous_watermark('funnels_updated_at') }}

            union all

            select funnels.started_at as touched_at
            from {{ funnels }} as funnels
            where
                exists (
                    select 1
                    from changed_conversions
                    where
                        changed_conversions.person_id = funnels.person_id
                        and changed_conversions.touched_at >= funnels.started_at
                        and changed_conversions.touched_at <= funnels.window_closes_at
                )
        ),

        -- A funnel row whose winning attempt changed can leave its period: the stored funnel counts of
        -- that period and campaign no longer match conversion_funnel's. Counted by day first (the local
        -- day of each funnel row once, not once per period type), then the days summed into their weeks
        -- and months.
        funnel_day_counts as (
            select
                {{ reporting_period_start('funnels.started_at', 'day') }} as period_date,
                coalesce(funnels.campaign_id, '(unattributed)') as campaign_id,
                count(*) as funnel_starts,
                sum(case when funnels.is_converted then 1 else 0 end) as funnel_completions
            from {{ funnels }} as funnels
            -- As conversion_metrics counts them: an excluded person has left the funnel.
            where not funnels.is_excluded
            group by
                {{ reporting_period_start('funnels.started_at', 'day') }},
                coalesce(funnels.campaign_id, '(unattributed)')
        ),

        current_funnel_counts as (
            select
                period_types.period_type,
                {{ period_start_of_date('period_types.period_type', 'funnel_day_counts.period_date') }} as period_date,
                funnel_day_counts.campaign_id,
                cast(sum(funnel_day_counts.funnel_starts) as {{ dbt.type_bigint() }}) as funnel_starts,
                cast(sum(funnel_day_counts.funnel_completions) as {{ dbt.type_bigint() }}) as funnel_completions
            from funnel_day_counts
            cross join period_types
            group by
                period_types.period_type,
                {{ period_start_of_date('period_types.period_type', 'funnel_day_counts.period_date') }},
                funnel_day_counts.campaign_id
        ),

        stored_funnel_counts as (
            select
                previous_rows.period_type,
                previous_rows.period_date,
                previous_rows.campaign_id,
                previous_rows.total_funnel_starts as funnel_starts,
                previous_rows.total_funnel_completions as funnel_completions
            from {{ this }} as previous_rows
            where
                previous_rows.attribution_model = 'reported'
                and previous_rows.total_funnel_starts > 0
        ),

        -- Ad spend per period and campaign, and as stored: they differ when spend was restated or the
        -- exchange-rate seed changed (spend is converted on every build, without a newer load).
        current_spend as (
            select
                period_types.period_type,
                {{ period_start_of_date('period_types.period_type', 'ad_spend.spend_date') }} as period_date,
                ad_spend.campaign_id,
                case
                    when count(ad_spend.spend_cents) = count(*) then sum(ad_spend.spend_cents)
                end as spend_cents,
                sum(ad_spend.impressions) as impressions,
                sum(ad_spend.clicks) as clicks
            from {{ ad_spend }} as ad_spend
            cross join period_types
            group by
                period_types.period_type,
                {{ period_start_of_date('period_types.period_type', 'ad_spend.spend_date') }},
                ad_spend.campaign_id
        ),

        stored_spend as (
            select
                previous_rows.period_type,
                previous_rows.period_date,
                previous_rows.campaign_id,
                previous_rows.spend_cents,
                previous_rows.impressions,
                previous_rows.clicks
            from {{ this }} as previous_rows
            where previous_rows.attribution_model = 'reported'
        ),

        touched_periods as (
            select distinct
                period_types.period_type,
                {{ period_start('period_types.period_type', 'touched_instants.touched_at') }} as period_date
            from touched_instants
            cross join period_types

            union

            -- Ad spend loaded or restated since (its load times are in the metric rows).
            select distinct
                period_types.period_type,
                {{ period_start_of_date('period_types.period_type', 'ad_spend.spend_date') }} as period_date
            from {{ ad_spend }} as ad_spend
            cross join period_types
            where ad_spend.last_loaded_at > {{ previous_watermark('ad_spend_loaded_at') }}

            union

            select
                coalesce(current_funnel_counts.period_type, stored_funnel_counts.period_type) as period_type,
                coalesce(current_funnel_counts.period_date, stored_funnel_counts.period_date) as period_date
            from current_funnel_counts
            full outer join stored_funnel_counts
                on
                    current_funnel_counts.period_type = stored_funnel_counts.period_type
                    and current_funnel_counts.period_date = stored_funnel_counts.period_date
                    and current_funnel_counts.campaign_id = stored_funnel_counts.campaign_id
            where
                current_funnel_counts.campaign_id is null
                or stored_funnel_counts.campaign_id is null
                or current_funnel_counts.funnel_starts <> stored_funnel_counts.funnel_starts
                or current_funnel_counts.funnel_completions <> stored_funnel_counts.funnel_completions

            union

            -- A missing side counts as no spend (0); a null spend (no exchange rate) as -1.
            select
                coalesce(current_spend.period_type, stored_spend.period_type) as period_type,
                coalesce(current_spend.period_date, stored_spend.period_date) as period_date
            from current_spend
            full outer join stored_spend
                on
                    current_spend.period_type = stored_spend.period_type
                    and current_spend.period_date = stored_spend.period_date
                    and current_spend.campaign_id = stored_spend.campaign_id
            where
                {%- for column in ['spend_cents', 'impressions', 'clicks'] %}
                    {% if not loop.first %}or {% endif -%}
                    case
                        when current_spend.campaign_id is null then 0 else coalesce(current_spend.{{ column }}, -1)
                    end
                    <> case
                        when stored_spend.campaign_id is null then 0 else coalesce(stored_spend.{{ column }}, -1)
                    end
                {%- endfor %}
        ),

        attribution_models as (
            {{ attribution_models_query() }}
        ),

        -- The markov rows of every period (stored, or holding a markov credit now) when the removal
        -- effects are not those of the last run; with var attribution_markov false this only deletes them.
        markov_periods as (
            select distinct
                previous_rows.period_type,
                previous_rows.period_date
            from {{ this }} as previous_rows
            where {{ markov_changed }}

            union

            select distinct
                period_types.period_type,
                {{ period_start('period_types.period_type', 'markov_rows.conversion_time') }} as period_date
            from {{ attribution }} as markov_rows
            cross join period_types
            where markov_rows.attribution_model = 'markov' and {{ markov_changed }}
        ),

        touched_keys as (
            select
                touched_periods.period_type,
                touched_periods.period_date,
                attribution_models.attribution_model
            from touched_periods
            cross join attribution_models

            union

            select
                markov_periods.period_type,
                markov_periods.period_date,
                'markov' as attribution_model
            from markov_periods
        )

        select
            cast(period_type as {{ dbt.type_string() }}) as period_type,
            cast(period_date as date) as period_date,
            cast(attribution_model as {{ dbt.type_string() }}) as attribution_model
        from touched_keys
        where period_date is not null
    {%- endset -%}
    {%- set rule_rows = dbt.listagg(
        measure=dbt.concat([
            "rules.conversion_type", "'|'",
            "cast(rules.is_sent as " ~ dbt.type_string() ~ ")", "'|'",
            "cast(rules.min_value_cents as " ~ dbt.type_string() ~ ")", "'|'",
            "rules.qualifying_sources",
        ]),
        delimiter_text="';'",
        order_by_clause="order by rules.conversion_type",
    ) -%}
    {%- set funnel_rows = dbt.listagg(
        measure="funnels.funnel_definition_hash",
        delimiter_text="';'",
        order_by_clause="order by funnels.funnel_name",
    ) -%}
    {{ return({
        'unique_key': ['period_type', 'period_date', 'attribution_model'],
        'fingerprint': incremental_fingerprint([
            attribution_credits_settings_hash(),
            "'" ~ var('reporting_timezone', 'UTC') ~ "'",
            "'" ~ var('reporting_currency', 'USD') ~ "'",
            '(select ' ~ rule_rows ~ ' from ' ~ rules ~ ' as rules)',
            '(select ' ~ funnel_rows ~ ' from (' ~ funnel_definition_hashes() ~ ') as funnels)',
        ]),
        'watermarks': {
            'conversions_loaded_at': [conversions, 'last_loaded_at', 'conversion_attribution'],
            'conversions_optimized_at': [conversions, 'optimized_at'],
            'credits_loaded_at': [credits, 'inputs_loaded_at', 'conversion_attribution'],
            'touchpoints_loaded_at': [touchpoints, '_loaded_at'],
            'funnels_updated_at': [funnels, 'updated_at'],
            'ad_spend_loaded_at': [ad_spend, 'last_loaded_at'],
        },
        'fingerprints': {
            'markov_settings': markov_settings,
        },
        'touched_keys': touched_keys,
    }) }}
{%- endmacro %}

{#- A conversion rollup of periods `grain` ('day', 'week', 'month'): delete+insert by period_date. -#}
{% macro conversion_rollup_incremental_state(grain) -%}
    {%- set touched_keys -%}
        with changed_conversions as (
            {{ changed_conversion_instants(previous_watermark('conversions_loaded_at'), strictly_after=true) }}
        )

        select distinct {{ reporting_period_start('changed_conversions.touched_at', grain) }} as period_date
        from changed_conversions
    {%- endset -%}
    {{ return({
        'unique_key': ['period_date'],
        'fingerprint': incremental_fingerprint([
            '(' ~ attribution_settings_hash() ~ ')',
            "'" ~ var('reporting_timezone', 'UTC') ~ "'",
            "'" ~ var('reporting_currency', 'USD') ~ "'",
        ]),
        'watermarks': {
            'conversions_loaded_at': [ref('conversion_event'), 'last_loaded_at']
                + ([] if grain == 'day' else ['conversion_rollup_daily']),
        },
        'touched_keys': touched_keys,
    }) }}
{%- endmacro %}
