{%- set state = attribution_paths_non_converting_incremental_state() -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='person_id',
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(attribution_paths_non_converting_incremental_state()) }}",
            "{{ delete_touched_rows(attribution_paths_non_converting_incremental_state()) }}",
        ],
        post_hook="{{ save_incremental_state(attribution_paths_non_converting_incremental_state()) }}",
    )
}}
{%- set is_incremental_run = incremental_spec_is_current(state) %}

-- One row per person with touches and no conversion at all: all their touches' channels and campaigns in
-- time order (touchpoint_time, then event id), joined with ' > ', the non-converting paths of attribution
-- model markov.
--
-- Incremental by person (delete+insert on person_id; the watermarks are kept in audit.incremental_state,
-- macros/touched_keys.sql). A run recomputes (audit.attribution_paths_non_converting_touched_keys):
-- * the persons with a touch loaded since the last run (new touches, touches stitched to them);
-- * the persons named by any copy of a conversion key with a copy loaded since (a conversion became
--   theirs, or stopped being theirs);
-- * the persons an anonymous id was relinked away from since, and those it went to;
-- * the stored persons left with no touch or with a conversion: their rows are only deleted.
-- Every row is recomputed when the channel mapping or an attribution var changed (int_touchpoints'
-- attribution_settings_hash), and on the first run without saved state. A full refresh gives the same
-- rows.
with touchpoints as (
    select * from {{ ref('int_touchpoints') }}
    {%- if is_incremental_run %}
        where person_id in (select touched.person_id from {{ touched_keys_relation() }} as touched)
    {%- endif %}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
    {%- if is_incremental_run %}
        where person_id in (select touched.person_id from {{ touched_keys_relation() }} as touched)
    {%- endif %}
),

non_converting_touches as (
    select
        touchpoints.person_id,
        touchpoints.touchpoint_event_id,
        touchpoints.channel,
        coalesce(touchpoints.campaign_id, '(unattributed)') as campaign_id,
        touchpoints.touchpoint_time
    from touchpoints
    where
        not exists (
            select 1 from conversions
            where conversions.person_id = touchpoints.person_id
        )
),

final as (
    select
        person_id,
        {{ touch_path_columns() }}
    from non_converting_touches
    group by person_id
)

select * from final
