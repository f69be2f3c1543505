{#-
    PostgreSQL (15+) implementations of the project's dispatched macros. The generic macro and its
    documentation live next to the DuckDB version (macros/*.sql, macros/meta/*.sql); every
    implementation here must return exactly what the DuckDB one returns (tests/engines/test_engines_equivalence.py
    compares every model built on both engines).
-#}

{#- macros/currency.sql: exact integer arithmetic (numeric), floor division of non-negative values. -#}
{% macro postgres__convert_cents(value_cents, from_units_per_usd, to_units_per_usd) -%}
    cast(
        div(
            2 * cast({{ value_cents }} as numeric) * round(cast({{ to_units_per_usd }} as numeric) * 1000000)
            + round(cast({{ from_units_per_usd }} as numeric) * 1000000),
            2 * round(cast({{ from_units_per_usd }} as numeric) * 1000000)
        )
        as bigint
    )
{%- endmacro %}

{% macro postgres__utc_date(timestamp_expression) -%}
    cast(({{ timestamp_expression }} at time zone 'UTC') as date)
{%- endmacro %}

{#- macros/first_non_null.sql: the first element of the ordered, filtered array. -#}
{% macro postgres__first_non_null(expression, order_expression, where) -%}
    (array_agg({{ expression }} order by {{ order_expression }}) filter (
        where {{ expression }} is not null{% if where %} and ({{ where }}){% endif %}
    ))[1]
{%- endmacro %}

{#- macros/median.sql: percentile_cont returns double precision, as DuckDB's quantile_cont. -#}
{% macro postgres__median(expression) -%}
    percentile_cont(0.5) within group (order by {{ expression }})
{%- endmacro %}

{#- macros/epoch_microseconds.sql: extract(epoch) is numeric on Postgres 14+, so exact to the microsecond. -#}
{% macro postgres__epoch_microseconds(timestamp_expression) -%}
    cast(extract(epoch from {{ timestamp_expression }}) * 1000000 as bigint)
{%- endmacro %}

{#- macros/meta/meta_engine_helpers.sql -#}
{% macro postgres__meta_sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro postgres__meta_is_sha256_hex(expression) -%}
    (length({{ expression }}) = 64 and {{ expression }} ~ '^[0-9a-f]{64}$')
{%- endmacro %}

{% macro postgres__meta_clean_lower(expression) -%}
    lower(normalize({{ trim_whitespace(expression) }}, nfc))
{%- endmacro %}

{#- Letters and combining marks: [[:alpha:]] in a UTF-8 database with a C.UTF-8 / ICU collation. -#}
{% macro postgres__meta_letters_only(expression) -%}
    regexp_replace({{ expression }}, '[^[:alpha:]]', '', 'g')
{%- endmacro %}

{% macro postgres__meta_digits_only(expression) -%}
    regexp_replace({{ expression }}, '[^0-9]', '', 'g')
{%- endmacro %}

{% macro postgres__meta_has_letter(expression) -%}
    ({{ expression }} ~ '[[:alpha:]]')
{%- endmacro %}

{% macro postgres__meta_is_email(expression) -%}
    ({{ expression }} ~ '^[^@\s]+@[^@\s.][^@\s]*\.[^@\s.][^@\s]*$')
{%- endmacro %}

{#-
    Each format is recognized by a regular expression (the patterns exclude one another), then the
    year, month and day are range-checked in nested cases (so no invalid cast or make_date runs) and
    the day must exist in that month (no 1990-02-30).
-#}
{% macro postgres__meta_parse_date_yyyymmdd(expression) -%}
    {%- set formats = [
        ('^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$', "split_part(E, '-', 1)", "split_part(E, '-', 2)", "split_part(E, '-', 3)"),
        ('^[0-9]{8}$', "substring(E, 1, 4)", "substring(E, 5, 2)", "substring(E, 7, 2)"),
        ('^[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}$', "split_part(E, '/', 1)", "split_part(E, '/', 2)", "split_part(E, '/', 3)"),
        ('^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$', "split_part(E, '/', 3)", "split_part(E, '/', 1)", "split_part(E, '/', 2)"),
        ('^[0-9]{1,2}[.][0-9]{1,2}[.][0-9]{4}$', "split_part(E, '.', 3)", "split_part(E, '.', 2)", "split_part(E, '.', 1)"),
    ] -%}
    case
        {%- for pattern, year, month, day in formats %}
            {%- set y = "cast(" ~ (year | replace('E', expression)) ~ " as integer)" -%}
            {%- set m = "cast(" ~ (month | replace('E', expression)) ~ " as integer)" -%}
            {%- set d = "cast(" ~ (day | replace('E', expression)) ~ " as integer)" %}
        when {{ expression }} ~ '{{ pattern }}' then case
            when {{ y }} between 1900 and 2099 and {{ m }} between 1 and 12 then case
                when {{ d }} between 1 and extract(day from make_date({{ y }}, {{ m }}, 1) + interval '1 month - 1 day')
                    then to_char(make_date({{ y }}, {{ m }}, {{ d }}), 'YYYYMMDD')
            end
        end
        {%- endfor %}
    end
{%- endmacro %}

{#- macros/meta/meta_json.sql: JSON text of a scalar (to_json of text quotes and escapes it). -#}
{% macro postgres__meta_to_json(expression) -%}
    cast(to_json({{ expression }}) as text)
{%- endmacro %}

{#- macros/round_decimal.sql: round(numeric, n) rounds half away from zero, like DuckDB's round. -#}
{% macro postgres__round_decimal(expression, digits) -%}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as decimal(18, {{ digits }}))
{%- endmacro %}

{#-
    macros/meta/meta_engine_helpers.sql, meta_lookup: PostgreSQL runs a correlated scalar subquery
    once per outer row and does not decorrelate it. So the lookup table is a materialized CTE (it
    does not depend on the outer row, so PostgreSQL computes it once per query and rescans the
    stored rows), and the probe value is computed once per outer row (a second materialized CTE),
    not once per lookup row.
-#}
{% macro postgres__meta_lookup(lookup_sql, lookup_expression) -%}
    (
        with
        meta_lookup_table as materialized ({{ lookup_sql }}),
        meta_lookup_probe as materialized (select {{ lookup_expression }} as lookup_key)
        select min(meta_lookup_table.lookup_value)
        from meta_lookup_table
        inner join meta_lookup_probe
            on meta_lookup_table.lookup_key = meta_lookup_probe.lookup_key
    )
{%- endmacro %}

{#- macros/json_access.sql: JSON text read as jsonb (invalid JSON raises an error: PostgreSQL 15 has no validity test). -#}
{% macro postgres__json_text(json_expression, keys) -%}
    (cast({{ json_expression }} as jsonb) #>> '{ {{- keys | join(",") -}} }')
{%- endmacro %}

{#- macros/json_access.sql: a key given as a text expression (->> takes any key as is). -#}
{% macro postgres__json_text_at_key(json_expression, key_expression) -%}
    (cast({{ json_expression }} as jsonb) ->> {{ key_expression }})
{%- endmacro %}

{% macro postgres__json_is_valid(json_expression) -%}
    (cast({{ json_expression }} as jsonb) is not null)
{%- endmacro %}

{% macro postgres__json_type_name(json_expression, keys) -%}
    upper(jsonb_typeof(cast({{ json_expression }} as jsonb) #> '{ {{- keys | join(",") -}} }'))
{%- endmacro %}

{% macro postgres__json_unnest_array_strings(json_expression, keys, otherwise) -%}
    {%- set value = "cast(" ~ json_expression ~ " as jsonb) #> '{" ~ (keys | join(",")) ~ "}'" -%}
    unnest(
        case
            when jsonb_typeof({{ value }}) = 'array' then array(select jsonb_array_elements_text({{ value }}))
            else array['{{ otherwise }}']
        end
    )
{%- endmacro %}

{#- macros/regexp_full_match.sql: POSIX regex, anchored (standard_conforming_strings: backslashes as is). -#}
{% macro postgres__regexp_full_match(expression, pattern) -%}
    ({{ expression }} ~ '^(?:{{ pattern | replace("'", "''") }})$')
{%- endmacro %}

{#- macros/planner_settings.sql: the model's config `postgres_settings`, for its transaction only. -#}
{% macro postgres__planner_settings() -%}
    {{ hook_statements(set_local_statements(config.get('postgres_settings'), model.unique_id)) }}
{%- endmacro %}

{#- macros/planner_settings.sql: statistics for the next models' plans (CTAS leaves a table without). -#}
{% macro postgres__planner_statistics() -%}
    {%- if config.get('materialized') != 'view' -%}
        analyze {{ this }}
    {%- endif -%}
{%- endmacro %}
