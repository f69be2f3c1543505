{#-
    Join condition: the touch `touch` (an int_touchpoints relation or alias) is in the lookback window of
    the conversion `conversion`: the same person, at or before the conversion, and less than var
    `attribution_lookback_days` before it (microseconds since 1970, so every engine cuts at the same
    instant). What attribution credits, the Markov chain and the paths call a conversion's touches.
-#}
{% macro touch_in_lookback_window(conversion, touch) -%}
    {%- set lookback_microseconds = (var('attribution_lookback_days', 7) * 86400000000) | int -%}
    {{ conversion }}.person_id = {{ touch }}.person_id
    and {{ epoch_microseconds(conversion ~ '.conversion_time') }} - {{ lookback_microseconds }}
    < {{ epoch_microseconds(touch ~ '.touchpoint_time') }}
    and {{ conversion }}.conversion_time >= {{ touch }}.touchpoint_time
{%- endmacro %}

{#-
    The aggregate columns of a path, from touches with channel, campaign_id, touchpoint_time and
    touchpoint_event_id, grouped by path: the channels and campaigns in path order (touchpoint_time, then
    event id) joined with ' > ', how many touches, distinct channels and campaigns, first and last touch.
-#}
{% macro touch_path_columns() -%}
    {{ dbt.listagg(
        measure='channel',
        delimiter_text="' > '",
        order_by_clause='order by touchpoint_time, touchpoint_event_id',
    ) }} as channel_path,
    {{ dbt.listagg(
        measure='campaign_id',
        delimiter_text="' > '",
        order_by_clause='order by touchpoint_time, touchpoint_event_id',
    ) }} as campaign_path,
    cast(count(*) as {{ dbt.type_bigint() }}) as touches_count,
    cast({{ count_distinct('channel') }} as {{ dbt.type_bigint() }}) as channels_count,
    cast({{ count_distinct('campaign_id') }} as {{ dbt.type_bigint() }}) as campaigns_count,
    min(touchpoint_time) as first_touch_at,
    max(touchpoint_time) as last_touch_at
{%- endmacro %}
