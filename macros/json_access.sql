{#-
    Reading JSON text (e.g. the meta_capi_events payload) the same way on every engine. `keys` is the
    path as a list of object keys (['user_data', 'em']).
-#}

{#- The value at `keys` as text (a string unquoted, a number or boolean as written); null when absent. -#}
{% macro json_text(json_expression, keys) -%}
    {{ return(adapter.dispatch('json_text')(json_expression, keys)) }}
{%- endmacro %}

{% macro default__json_text(json_expression, keys) -%}
    json_extract_string({{ json_expression }}, '$.{{ keys | join(".") }}')
{%- endmacro %}

{% macro postgres__json_text(json_expression, keys) -%}
    (cast({{ json_expression }} as jsonb) #>> '{ {{- keys | join(",") -}} }')
{%- endmacro %}

{#- True when the text is valid JSON (PostgreSQL 15 has no validity test: invalid JSON raises an error). -#}
{% macro json_is_valid(json_expression) -%}
    {{ return(adapter.dispatch('json_is_valid')(json_expression)) }}
{%- endmacro %}

{% macro default__json_is_valid(json_expression) -%}
    json_valid({{ json_expression }})
{%- endmacro %}

{% macro postgres__json_is_valid(json_expression) -%}
    (cast({{ json_expression }} as jsonb) is not null)
{%- endmacro %}
