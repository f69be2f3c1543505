{#-
    Identity values that were present but could not be normalized for Meta (an e-mail without @,
    a phone with letters, an impossible date of birth, an unknown country…) are left out of
    user_data and never sent raw; these macros count and name them. A field is dropped when
    `present_expressions[field]` (a SQL condition: the value was there) holds and the field's hash
    column `<prefix><field>_sha256` is null. Portable SQL; not dispatched.
-#}

{#- The hashed user_data fields of Meta's Conversions API, in payload order. -#}
{% macro meta_user_data_fields() -%}
    {{ return(['em', 'ph', 'fn', 'ln', 'db', 'ge', 'ct', 'st', 'zp', 'country', 'external_id']) }}
{%- endmacro %}

{#- How many fields were dropped (integer, 0 when none). -#}
{% macro meta_dropped_user_data_count(present_expressions, prefix='') -%}
    cast((
        {%- for field in meta_user_data_fields() %}
            case when ({{ present_expressions[field] }}) and {{ prefix }}{{ field }}_sha256 is null then 1 else 0 end
            {%- if not loop.last %} +{% endif %}
        {%- endfor %}
    ) as {{ dbt.type_int() }})
{%- endmacro %}

{#- Their Meta field names, comma-separated in payload order (`em,ph`); null when none. -#}
{% macro meta_dropped_user_data_names(present_expressions, prefix='') -%}
    nullif(concat_ws(
        ','
        {%- for field in meta_user_data_fields() %},
        case when ({{ present_expressions[field] }}) and {{ prefix }}{{ field }}_sha256 is null then '{{ field }}' end
        {%- endfor %}
    ), '')
{%- endmacro %}

{#-
    `present_expressions` for a table of conversions that carries `names_column`, a comma-separated
    list of fields dropped by at least one of its copies (see int_conversions_deduplicated): the
    field is "present" when that list names it.
-#}
{% macro meta_fields_named_in(names_column) -%}
    {%- set present = {} -%}
    {%- for field in meta_user_data_fields() -%}
        {%- do present.update({field: "',' || " ~ names_column ~ " || ',' like '%," ~ field ~ ",%'"}) -%}
    {%- endfor -%}
    {{ return(present) }}
{%- endmacro %}
