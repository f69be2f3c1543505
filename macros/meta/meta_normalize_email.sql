{#-
    Meta `em`: trimmed and lower-cased. It must look like an address (exactly one @, a dot in the
    domain, no spaces), otherwise null: an address that cannot be normalized is not sent.
-#}
{% macro meta_normalize_email(expression) -%}
    case
        when {{ meta_is_email(meta_clean_lower(expression)) }} then {{ meta_clean_lower(expression) }}
    end
{%- endmacro %}
