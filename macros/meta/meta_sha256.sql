{#-
    Meta's hash of a normalized user-data value: lower-case hex SHA-256 of its UTF-8 bytes.
    A value that already is a SHA-256 (64 hex digits, any case) is passed through lower-cased,
    not hashed again. Null (a value that could not be normalized) stays null: never sent raw.
-#}
{% macro meta_sha256(expression) -%}
    case
        when {{ meta_is_sha256_hex('lower(' ~ trim_whitespace(expression) ~ ')') }} then lower({{ trim_whitespace(expression) }})
        else {{ meta_sha256_hex(expression) }}
    end
{%- endmacro %}
