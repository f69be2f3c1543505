{#-
    Meta `ph`: digits only, with the country calling code, without a leading + or 00.
      1. A value containing a letter is null (`call me`, `555-CALL`); `(0)` is dropped
         (`+44 (0)20 …` is written with a superfluous trunk zero).
      2. Written internationally (starts with `+` or `00`): the digits after that prefix.
      3. Otherwise a national number; with `country_expression` known (code or name, see
         `meta_normalize_country`) and its calling code/trunk prefix from seed `country_codes`:
         a number starting with the trunk prefix loses it and gets the calling code
         (UK `07911 123456` → `447911123456`, US `1 (202) 555-0123` → `12025550123`, Spain
         `091 848 2072` → `34918482072`: see trunk_prefix in seeds/country_codes.csv); one already starting with
         the calling code is kept (`447911123456`); any other gets the calling code prepended
         (US `(202) 555-0123` → `12025550123`, Italy `06 1234 5678` → `390612345678`).
         With no known country the digits are kept as they are.
      4. The result must have 7 to 15 digits (E.164), otherwise null.
    A model normalizing many rows can normalize the country once per row, look up its codes with
    `meta_calling_code_of_alpha2` / `meta_trunk_prefix_of_alpha2` and call
    `meta_phone_with_calling_code` directly.
-#}
{% macro meta_normalize_phone(expression, country_expression) -%}
    {{ meta_phone_with_calling_code(
        expression,
        meta_calling_code(country_expression),
        meta_trunk_prefix(country_expression)
    ) }}
{%- endmacro %}

{#- Steps 1, 2 and 4 above, and 3 with the calling code and trunk prefix given (either may be null). -#}
{% macro meta_phone_with_calling_code(expression, calling_code_expression, trunk_prefix_expression) -%}
    {%- set cleaned = "replace(" ~ trim_whitespace(expression) ~ ", '(0)', '')" -%}
    {%- set digits = meta_digits_only(cleaned) -%}
    {%- set calling_code = calling_code_expression -%}
    {%- set trunk_prefix = "coalesce(" ~ trunk_prefix_expression ~ ", '')" -%}
    {%- set with_code -%}
        case
            when {{ cleaned }} like '+%' then {{ digits }}
            when {{ digits }} like '00%' then substring({{ digits }}, 3)
            when {{ calling_code }} is null then {{ digits }}
            when {{ trunk_prefix }} <> '' and {{ digits }} like {{ trunk_prefix }} || '%'
                then {{ calling_code }} || substring({{ digits }}, length({{ trunk_prefix }}) + 1)
            when {{ digits }} like {{ calling_code }} || '%' then {{ digits }}
            else {{ calling_code }} || {{ digits }}
        end
    {%- endset -%}
    case
        when {{ meta_has_letter(expression) }} then null
        when length({{ with_code }}) between 7 and 15 then {{ with_code }}
    end
{%- endmacro %}

{#- International calling code (`1`, `44`) of a country (code or name); null when unknown. -#}
{% macro meta_calling_code(country_expression) -%}
    {{ meta_calling_code_of_alpha2(meta_normalize_country(country_expression)) }}
{%- endmacro %}

{#- The same for a country already normalized (`meta_normalize_country`: lower-case alpha-2). -#}
{% macro meta_calling_code_of_alpha2(alpha2_expression) -%}
    {%- set calling_code_sql -%}
        select
            lower(country_codes_seed.alpha2) as lookup_key,
            min(country_codes_seed.calling_code) as lookup_value
        from {{ ref('country_codes') }} as country_codes_seed
        where country_codes_seed.calling_code is not null
        group by 1
    {%- endset -%}
    {{ meta_lookup(calling_code_sql, alpha2_expression) }}
{%- endmacro %}

{#- National trunk prefix (`0`, `1`, `8`, or '' for none) of a country (code or name); null when unknown. -#}
{% macro meta_trunk_prefix(country_expression) -%}
    {{ meta_trunk_prefix_of_alpha2(meta_normalize_country(country_expression)) }}
{%- endmacro %}

{#- The same for a country already normalized (lower-case alpha-2). -#}
{% macro meta_trunk_prefix_of_alpha2(alpha2_expression) -%}
    {%- set trunk_prefix_sql -%}
        select
            lower(country_codes_seed.alpha2) as lookup_key,
            min(coalesce(country_codes_seed.trunk_prefix, '')) as lookup_value
        from {{ ref('country_codes') }} as country_codes_seed
        group by 1
    {%- endset -%}
    {{ meta_lookup(trunk_prefix_sql, alpha2_expression) }}
{%- endmacro %}
