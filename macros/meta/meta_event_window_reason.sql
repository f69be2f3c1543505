{#-
    Why an event is outside Meta's event_time window at a reference time, or null when it is inside:
    Meta rejects the whole request when an event is more than 7 days old (62 days for action_source
    physical_store), and an event after the reference time is not sendable yet. Both arguments are
    unix seconds. meta_capi_events uses it for a row's `expired` status and, on an incremental run, to
    find the stored rows whose status the new reference time changes.
-#}
{% macro meta_event_window_reason(event_time, reference_time, action_source) -%}
    {%- set max_age_seconds = 7 * 24 * 3600 -%}
    {%- set physical_store_max_age_seconds = 62 * 24 * 3600 -%}
    case
        when {{ event_time }} > {{ reference_time }}
            then 'event_time is in the future of the reference time'
        when
            {{ event_time }} < {{ reference_time }} - case
                when {{ action_source }} = 'physical_store' then {{ physical_store_max_age_seconds }}
                else {{ max_age_seconds }}
            end
            then
                'event_time is more than '
                || case when {{ action_source }} = 'physical_store' then '62' else '7' end
                || ' days before the reference time'
    end
{%- endmacro %}
