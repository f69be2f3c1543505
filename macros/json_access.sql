{#-
    Reading JSON text (e.g. the meta_capi_events payload) the same way on every engine. `keys` is the
    path as a list of object keys (['user_data', 'em']). DuckDB versions here; the PostgreSQL ones
    are in macros/engines/postgres.sql.
-#}

{#- DuckDB's JSON path of `keys` (`$.user_data.em`); `$`, the value itself, when `keys` is empty (for a
    value json_extract has already taken out of its document). -#}
{% macro duckdb_json_path(keys) -%}
    ${{ '.' ~ keys | join('.') if keys else '' }}
{%- endmacro %}

{#- The value at `keys` as text (a string unquoted, a number or boolean as written); null when absent. -#}
{% macro json_text(json_expression, keys) -%}
    {{ return(adapter.dispatch('json_text')(json_expression, keys)) }}
{%- endmacro %}

{% macro default__json_text(json_expression, keys) -%}
    json_extract_string({{ json_expression }}, '{{ duckdb_json_path(keys) }}')
{%- endmacro %}

{#- True when the text is valid JSON. -#}
{% macro json_is_valid(json_expression) -%}
    {{ return(adapter.dispatch('json_is_valid')(json_expression)) }}
{%- endmacro %}

{% macro default__json_is_valid(json_expression) -%}
    json_valid({{ json_expression }})
{%- endmacro %}

{#- JSON type of the value at `keys`, upper-case DuckDB names ('ARRAY', 'OBJECT', …); null when absent. -#}
{% macro json_type_name(json_expression, keys) -%}
    {{ return(adapter.dispatch('json_type_name')(json_expression, keys)) }}
{%- endmacro %}

{% macro default__json_type_name(json_expression, keys) -%}
    json_type({{ json_expression }}, '{{ duckdb_json_path(keys) }}')
{%- endmacro %}

{#-
    Set-returning select-list expression: one row per element (as text) of the array at `keys`,
    or a single row `otherwise` (a string) when the value there is absent or not an array.
-#}
{% macro json_unnest_array_strings(json_expression, keys, otherwise) -%}
    {{ return(adapter.dispatch('json_unnest_array_strings')(json_expression, keys, otherwise)) }}
{%- endmacro %}

{#- A wildcard over a value that is not an array gives an empty list on DuckDB, not null: the type is
    checked, so a string or an object gives `otherwise` as on the other engines. -#}
{% macro default__json_unnest_array_strings(json_expression, keys, otherwise) -%}
    unnest(
        case
            when json_type({{ json_expression }}, '{{ duckdb_json_path(keys) }}') = 'ARRAY'
                then json_extract_string({{ json_expression }}, '{{ duckdb_json_path(keys) }}[*]')
            else ['{{ otherwise }}']
        end
    )
{%- endmacro %}

{#-
    The value at one top-level key given as a text expression (not a literal: it may differ per row), as
    text; null when absent. The key must not contain a double quote (callers validate it).
-#}
{% macro json_text_at_key(json_expression, key_expression) -%}
    {{ return(adapter.dispatch('json_text_at_key')(json_expression, key_expression)) }}
{%- endmacro %}

{% macro default__json_text_at_key(json_expression, key_expression) -%}
    json_extract_string({{ json_expression }}, '$."' || {{ key_expression }} || '"')
{%- endmacro %}
