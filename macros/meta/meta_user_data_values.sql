{#-
    Every value of the given user_data fields in the meta_capi_events payloads of `relation` (a relation or
    CTE name with conversion_id and payload): one row per array element, with conversion_id, the field, the
    JSON type of the field's value (value_type, upper-case as json_type_name gives it; null when the field is
    absent) and the element as text (hashed_value). A field whose value is not an array gives one row with
    hashed_value 'absent'. Dispatched: DuckDB parses each payload once for all the fields; other engines
    read each field with json_type_name and json_unnest_array_strings.
-#}
{% macro meta_user_data_values(relation, fields) -%}
    {{ return(adapter.dispatch('meta_user_data_values')(relation, fields)) }}
{%- endmacro %}

{% macro default__meta_user_data_values(relation, fields) -%}
    {%- for field in fields %}
        select
            {{ relation }}.conversion_id,
            '{{ field }}' as field,
            {{ json_type_name(relation ~ '.payload', ['user_data', field]) }} as value_type,
            {{ json_unnest_array_strings(relation ~ '.payload', ['user_data', field], 'absent') }} as hashed_value
        from {{ relation }}
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
{%- endmacro %}

{#- DuckDB: one json_extract with every field's path parses the payload once (a payload is about a
    kilobyte; reading eleven fields one by one parsed it 22 times, at 10M events 4.3 s of the 5.5 s of
    assert_meta_capi_user_data_hashes_are_sha256). The fields and their values are unnested side by side. -#}
{% macro duckdb__meta_user_data_values(relation, fields) -%}
    select
        user_values.conversion_id,
        user_values.field,
        -- The DuckDB versions of the macros of macros/json_access.sql, on each value already extracted:
        -- a value that is not an array (a string, an object, a JSON null) gives one row 'absent'.
        {{ default__json_type_name('user_values.field_value', []) }} as value_type,
        {{ default__json_unnest_array_strings('user_values.field_value', [], 'absent') }} as hashed_value
    from (
        select
            {{ relation }}.conversion_id,
            unnest([{% for field in fields %}'{{ field }}'{{ ', ' if not loop.last }}{% endfor %}]) as field,
            unnest(json_extract(
                {{ relation }}.payload,
                [{% for field in fields %}'$.user_data.{{ field }}'{{ ', ' if not loop.last }}{% endfor %}]
            )) as field_value
        from {{ relation }}
    ) as user_values
{%- endmacro %}
