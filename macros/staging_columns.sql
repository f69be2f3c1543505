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

{#-
    The consent columns (`_CONSENT` in pipelines/contract.py) of `relation`, a raw landing table:
    consent_ads lower-cased, blank or absent as `unknown`; opt_out and limited_data_use false when not
    given. A raw table written before these columns existed (an older warehouse not ingested into
    since) has none of them: they then read as not given, so its build goes on as before.
-#}
{% macro staging_consent_columns(relation) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- set present = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- endif -%}
    {%- set has = {} -%}
    {%- for name in ['consent_ads', 'opt_out', 'limited_data_use'] -%}
        {%- do has.update({name: (not present) or (name in present)}) -%}
    {%- endfor %}
        {% if has['consent_ads'] -%}
            coalesce({{ clean_lower('consent_ads') }}, 'unknown')
        {%- else -%}
            cast('unknown' as {{ dbt.type_string() }})
        {%- endif %} as consent_ads,
        {% if has['opt_out'] -%}
            coalesce(opt_out, false)
        {%- else -%}
            false
        {%- endif %} as opt_out,
        {% if has['limited_data_use'] -%}
            coalesce(limited_data_use, false)
        {%- else -%}
            false
        {%- endif %} as limited_data_use,
{%- endmacro %}

{#- `expression` when `relation` has column `column_name`, else a null string (a table from before it existed). -#}
{% macro staging_optional_column(relation, column_name, expression) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- set present = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
    {%- endif -%}
    {%- if not present or column_name in present -%}
        {{ expression }}
    {%- else -%}
        cast(null as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
