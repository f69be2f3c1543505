{%- set state = attribution_paths_incremental_state() -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_id',
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(attribution_paths_incremental_state()) }}",
            "{{ delete_touched_rows(attribution_paths_incremental_state()) }}",
        ],
        post_hook="{{ save_incremental_state(attribution_paths_incremental_state()) }}",
    )
}}
{%- set is_incremental_run = incremental_spec_is_current(state) %}

-- One row per conversion with its path: the channels and campaigns of its touches in the lookback window
-- (the touches every attribution model credits), in path order (touchpoint_time, then event id), joined
-- with ' > '. A conversion without touches has the path `(no touches)` and 0 touches (attribution credits
-- it to channel direct, campaign (unattributed)).
--
-- Incremental by conversion (delete+insert on conversion_id; the watermarks are kept in
-- audit.incremental_state, macros/touched_keys.sql). A path is the conversion's touches in the window, the
-- ones its credits are computed from, so a run recomputes (audit.attribution_paths_touched_keys):
-- * the conversions of a key (conversion_type, event_id) with a copy loaded since the last run: new,
--   revalued, and re-clustered by a late copy (new ids);
-- * the conversions whose credits int_attribution_credits recomputed from a newer input
--   (inputs_loaded_at: a touchpoint entered the lookback window, or a new copy);
-- * the conversions that no longer exist: their rows are only deleted.
-- Every row is recomputed when the attribution settings (lookback, channel mapping: the credits'
-- attribution_settings_hash) or var `reporting_currency` changed, and on the first run without saved
-- state. A changed exchange-rate seed needs --full-refresh, as it does for int_conversions_valued. A full
-- refresh gives the same rows.
with conversions as (
    select * from {{ ref('int_conversions_valued') }}
    {%- if is_incremental_run %}
        where id in (select touched.conversion_id from {{ touched_keys_relation() }} as touched)
    {%- endif %}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
    {%- if is_incremental_run %}
        where person_id in (select conversions.person_id from conversions)
    {%- endif %}
),

path_touches as (
    select
        conversions.id as conversion_id,
        touchpoints.touchpoint_event_id,
        touchpoints.channel,
        coalesce(touchpoints.campaign_id, '(unattributed)') as campaign_id,
        touchpoints.touchpoint_time
    from conversions
    inner join touchpoints
        on {{ touch_in_lookback_window('conversions', 'touchpoints') }}
),

paths as (
    select
        conversion_id,
        {{ touch_path_columns() }}
    from path_touches
    group by conversion_id
),

final as (
    select
        conversions.id as conversion_id,
        conversions.person_id,
        conversions.conversion_type,
        coalesce(paths.channel_path, '(no touches)') as channel_path,
        coalesce(paths.campaign_path, '(no touches)') as campaign_path,
        conversions.reporting_currency,
        cast(coalesce(paths.touches_count, 0) as {{ dbt.type_bigint() }}) as touches_count,
        cast(coalesce(paths.channels_count, 0) as {{ dbt.type_bigint() }}) as channels_count,
        cast(coalesce(paths.campaigns_count, 0) as {{ dbt.type_bigint() }}) as campaigns_count,
        conversions.value_cents_reporting,
        paths.first_touch_at,
        paths.last_touch_at,
        conversions.conversion_time
    from conversions
    left join paths
        on conversions.id = paths.conversion_id
)

select * from final
