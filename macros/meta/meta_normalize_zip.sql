{#-
    Meta `zp`: lower-case, without spaces and dashes (`SW1A 1AA` → `sw1a1aa`, `00-950` → `00950`).
    US ZIP codes (country `us`, see `meta_normalize_country`) keep their first 5 digits only; the
    ZIP+4 form is accepted with or without the dash (`94103-1234`, `941031234` → `94103`); a US
    value that is not 5 or 9 digits is null. When the country is unknown, a value written exactly
    as ZIP+4 with its dash (`94103-1234`) is read as a US ZIP as well. Null when nothing is left.
-#}
{% macro meta_normalize_zip(expression, country_expression) -%}
    {{ meta_zip_for_country(expression, meta_normalize_country(country_expression)) }}
{%- endmacro %}

{#- The same, with the country already normalized (lower-case alpha-2 or null). -#}
{% macro meta_zip_for_country(expression, alpha2_expression) -%}
    {%- set trimmed = trim_whitespace(expression) -%}
    {%- set compact = "replace(replace(" ~ meta_clean_lower(expression) ~ ", ' ', ''), '-', '')" -%}
    case
        when
            coalesce({{ alpha2_expression }} = 'us', false)
            or (
                {{ alpha2_expression }} is null
                and length({{ trimmed }}) = 10
                and substring({{ trimmed }}, 6, 1) = '-'
                and length({{ meta_digits_only(trimmed) }}) = 9
            )
            then case
                when {{ meta_digits_only(compact) }} = {{ compact }} and length({{ compact }}) in (5, 9)
                    then substring({{ compact }}, 1, 5)
            end
        else nullif({{ compact }}, '')
    end
{%- endmacro %}
