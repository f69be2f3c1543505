{#-
    Meta `country`: ISO 3166-1 alpha-2, lower-case. Accepts the alpha-2 or alpha-3 code or a name
    (ISO short, official or common name, or the alias in seed `country_codes`), compared on
    lower-case letters only (`U.S.A.`, `United States`, `united states of america` → `us`;
    `UK` → `gb`). Null when nothing in the seed matches.
-#}
{% macro meta_normalize_country(expression) -%}
    {{ meta_lookup(meta_country_lookup_sql(), meta_letters_only(meta_clean_lower(expression))) }}
{%- endmacro %}

{#-
    Query of (lookup_key, lookup_value): every spelling of seed `country_codes` that
    `meta_normalize_country` accepts, as lower-case letters only, with its lower-case alpha-2.
-#}
{% macro meta_country_lookup_sql() -%}
    {%- set spellings = ['alpha2', 'alpha3', 'name', 'official_name', 'common_name', 'alias'] -%}
    select
        country_spellings.lookup_key,
        min(country_spellings.lookup_value) as lookup_value
    from (
        {%- for spelling in spellings %}
        select
            {{ meta_letters_only(meta_clean_lower('country_codes_seed.' ~ spelling)) }} as lookup_key,
            lower(country_codes_seed.alpha2) as lookup_value
        from {{ ref('country_codes') }} as country_codes_seed
        {%- if not loop.last %}
        union all
        {%- endif %}
        {%- endfor %}
    ) as country_spellings
    where country_spellings.lookup_key <> ''
    group by country_spellings.lookup_key
{%- endmacro %}
