{#-
    Column groups that the events and conversions streams share (see the `_ATTRIBUTION`, `_DEVICE`
    and `_CLIENT` groups of pipelines/contract.py), tidied the same way in every staging model:
    ids and free text trimmed with '' as null, utm_source/utm_medium and device_type lower-cased,
    two-letter countries upper-cased.
-#}
{% macro staging_attribution_columns() -%}
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('ad_set_id') }} as ad_set_id,
        {{ clean_string('ad_id') }} as ad_id,
        {{ clean_lower('utm_source') }} as utm_source,
        {{ clean_lower('utm_medium') }} as utm_medium,
        {{ clean_string('utm_campaign') }} as utm_campaign,
        {{ clean_string('utm_content') }} as utm_content,
        {{ clean_string('utm_term') }} as utm_term,
        {{ clean_string('fbclid') }} as fbclid,
{%- endmacro %}

{% macro staging_device_columns() -%}
        {{ clean_lower('device_type') }} as device_type,
        {{ clean_string('browser') }} as browser,
        {{ clean_string('os') }} as os,
        {{ country_code('country') }} as country,
        {{ clean_string('city') }} as city,
{%- endmacro %}

{% macro staging_client_columns() -%}
        {{ clean_string('event_source_url') }} as event_source_url,
        {{ clean_string('client_ip_address') }} as client_ip_address,
        {{ clean_string('client_user_agent') }} as client_user_agent,
        {{ clean_string('fbp') }} as fbp,
        {{ clean_string('fbc') }} as fbc,
        {{ clean_string('properties') }} as properties,
{%- endmacro %}

{#-
    1 for the latest load of each `partition_columns` group of a raw stream: by _loaded_at, then file and
    row. For sources whose producers restate rows (ad spend days, adjustments sent again).
-#}
{% macro latest_load_rank(partition_columns) -%}
    row_number() over (
        partition by {{ partition_columns | join(', ') }}
        order by _loaded_at desc, _source_file desc, _source_row desc
    )
{%- endmacro %}
