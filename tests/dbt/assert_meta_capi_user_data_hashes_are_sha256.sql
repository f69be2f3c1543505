-- Every hashed user_data value in a meta_capi_events payload is an array of 64 lower-case hex digits.
{%- set hashed_fields = ['em', 'ph', 'fn', 'ln', 'db', 'ge', 'ct', 'st', 'zp', 'country', 'external_id'] %}

with events as (
    select * from {{ ref('meta_capi_events') }}
),

{% if target.type == 'postgres' -%}
hashed_values as (
    {%- for field in hashed_fields %}
        select
            events.conversion_id,
            '{{ field }}' as field,
            upper(jsonb_typeof(cast(events.payload as jsonb) #> '{user_data,{{ field }}}')) as value_type,
            elements.hashed_value
        from events
        left join lateral jsonb_array_elements_text(
            case
                when jsonb_typeof(cast(events.payload as jsonb) #> '{user_data,{{ field }}}') = 'array'
                    then cast(events.payload as jsonb) #> '{user_data,{{ field }}}'
            end
        ) as elements (hashed_value) on true
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

{%- else -%}
hashed_values as (
    {%- for field in hashed_fields %}
        select
            events.conversion_id,
            '{{ field }}' as field,
            json_type(events.payload, '$.user_data.{{ field }}') as value_type,
            unnest(
                coalesce(json_extract_string(events.payload, '$.user_data.{{ field }}[*]'), ['absent'])
            ) as hashed_value
        from events
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

{%- endif %}

select *
from hashed_values
where
    value_type is not null
    and (value_type <> 'ARRAY' or not {{ meta_is_sha256_hex('hashed_value') }})
