{#-
    JSON text building blocks for `meta_capi_events` payloads. A member whose value is null is left
    out (Meta wants absent keys, not nulls): `meta_json_object` joins its members with concat_ws,
    which skips nulls. Only `meta_to_json` is engine-specific.
-#}

{#- JSON text of a scalar SQL value (string quoted and escaped, number as is). -#}
{% macro meta_to_json(expression) -%}
    {{ return(adapter.dispatch('meta_to_json')(expression)) }}
{%- endmacro %}
{% macro default__meta_to_json(expression) -%}{{ meta_unsupported('meta_to_json') }}{%- endmacro %}
{% macro duckdb__meta_to_json(expression) -%}
    to_json({{ expression }})
{%- endmacro %}

{#- `"key":<value as JSON>`, or null when the value is null. -#}
{% macro meta_json_member(key, expression) -%}
    case when {{ expression }} is not null then '"{{ key }}":' || {{ meta_to_json(expression) }} end
{%- endmacro %}

{#-
    `"key":["<hash>"]` for a user_data hash (a one-element array of strings), or null when it is null.
    The value is not serialized: it is always 64 lower-case hex
    digits (meta_hash_normalized; test assert_meta_capi_user_data_hashes_are_sha256) and so needs
    no escaping. Serializing 11 hashes per event was a tenth of meta_capi_events' time.
-#}
{% macro meta_json_hash_member(key, expression) -%}
    case when {{ expression }} is not null then '"{{ key }}":["' || {{ expression }} || '"]' end
{%- endmacro %}

{#- `"key":<json_expression>` for a value that already is JSON text, or null when it is null. -#}
{% macro meta_json_raw_member(key, json_expression) -%}
    case when {{ json_expression }} is not null then '"{{ key }}":' || {{ json_expression }} end
{%- endmacro %}

{#- `{member,member,…}` from the members above, null members left out (`{}` when all are null). -#}
{% macro meta_json_object(members) -%}
    '{' || concat_ws(
        ','
        {%- for member in members %},
        {{ member }}
        {%- endfor %}
    ) || '}'
{%- endmacro %}
