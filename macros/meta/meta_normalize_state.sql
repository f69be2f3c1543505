{#-
    Meta `st`: the two-letter code, lower-case. Punctuation and spaces are dropped first
    (`N.Y.` → `ny`); a US state, DC or territory written out (`California`, `new york`) becomes its
    USPS code via seed `us_states`; any other name (a region outside the US) is kept as
    lower-case letters only, as Meta asks for non-US states. Null when no letter is left.
-#}
{% macro meta_normalize_state(expression) -%}
    {%- set letters = meta_letters_only(meta_clean_lower(expression)) -%}
    {%- set state_lookup_sql -%}
        select
            {{ meta_letters_only(meta_clean_lower('us_states_seed.state_name')) }} as lookup_key,
            min(lower(us_states_seed.state_code)) as lookup_value
        from {{ ref('us_states') }} as us_states_seed
        group by 1
    {%- endset -%}
    case
        when length({{ letters }}) = 2 then {{ letters }}
        else coalesce({{ meta_lookup(state_lookup_sql, letters) }}, nullif({{ letters }}, ''))
    end
{%- endmacro %}
