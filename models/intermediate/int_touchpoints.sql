{{
    config(
        materialized='incremental',
        unique_key='touchpoint_event_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}

-- One row per touchpoint: a deduplicated behavioural event that carries campaign information (an
-- ad_click, or any event with a campaign_id, an fbclid or a UTM parameter), with its channel from
-- seeds/channel_mapping.csv. Incremental (delete+insert on the event id): a run reads the events loaded
-- after the latest load already kept (an event re-stitched to another person counts as loaded
-- when its identity observation landed: int_events_deduplicated.last_loaded_at); when the channel
-- mapping or an attribution var changed (attribution_settings_hash), it recomputes every row. A full
-- refresh gives the same rows.
with events as (
    select * from {{ ref('int_events_deduplicated') }}
),

settings as (
    {{ attribution_settings_hash() }}
),

{% if is_incremental() -%}
    previous_run as (
        select
            coalesce(max(_loaded_at), cast('1970-01-01' as {{ dbt.type_timestamp() }})) as loaded_at,
            coalesce(
                max(
                    case
                        when attribution_settings_hash <> (select settings.attribution_settings_hash from settings)
                            then 1
                        else 0
                    end
                ) = 1,
                false
            ) as is_settings_changed
        from {{ this }}
    ),
{%- endif %}

campaign_events as (
    select events.*
    from events
    where
        (
            events.event_name = 'ad_click'
            or events.campaign_id is not null
            or events.fbclid is not null
            or events.utm_source is not null
            or events.utm_medium is not null
            or events.utm_campaign is not null
            or events.utm_content is not null
            or events.utm_term is not null
        )
),

{% if is_incremental() -%}
    events_to_process as (
        select campaign_events.*
        from campaign_events
        where
            campaign_events.last_loaded_at > (select previous_run.loaded_at from previous_run)
            or (select previous_run.is_settings_changed from previous_run)
    ),
{%- else -%}
    events_to_process as (
        select * from campaign_events
    ),
{%- endif %}

channels as (
    {{ attribution_channel_lookup('events_to_process', 'event_id') }}
),

final as (
    select
        events_to_process.event_id as touchpoint_event_id,
        events_to_process.person_id,
        events_to_process.event_name,
        events_to_process.campaign_id,
        events_to_process.ad_set_id,
        events_to_process.ad_id,
        events_to_process.utm_source,
        events_to_process.utm_medium,
        events_to_process.utm_campaign,
        events_to_process.utm_content,
        events_to_process.utm_term,
        events_to_process.fbclid,
        -- 'other' only if the seed lost its catch-all row (a test flags that).
        coalesce(channels.channel, 'other') as channel,
        events_to_process.device_type,
        events_to_process.country,
        settings.attribution_settings_hash,
        events_to_process.event_name = 'ad_click' as is_ad_click,
        events_to_process.event_time as touchpoint_time,
        -- The event's last change: its load, or the load of the identity observation that stitched its person.
        events_to_process.last_loaded_at as _loaded_at
    from events_to_process
    left join channels
        on events_to_process.event_id = channels.event_id
    cross join settings
)

select * from final
