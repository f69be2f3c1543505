{#-
    Engine-specific building blocks of the Meta normalization macros (regular expressions, Unicode
    normalization, SHA-256). Every macro here is dispatched: `duckdb__` is implemented; another
    engine fails at compile time with a clear message until its version is written.
    Each takes and returns a SQL text expression; null in gives null out.
-#}

{% macro meta_unsupported(macro_name) -%}
    {{ exceptions.raise_compiler_error(
        macro_name ~ " has no implementation for the '" ~ adapter.type()
        ~ "' adapter yet: add " ~ adapter.type() ~ "__" ~ macro_name ~ " in macros/meta/meta_engine_helpers.sql"
    ) }}
{%- endmacro %}

{#- Lower-case hex SHA-256 of the UTF-8 bytes of the text (64 characters). -#}
{% macro meta_sha256_hex(expression) -%}
    {{ return(adapter.dispatch('meta_sha256_hex')(expression)) }}
{%- endmacro %}
{% macro default__meta_sha256_hex(expression) -%}{{ meta_unsupported('meta_sha256_hex') }}{%- endmacro %}
{% macro duckdb__meta_sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{#- True when the text is exactly 64 lower-case hex digits (an already-hashed value). -#}
{% macro meta_is_sha256_hex(expression) -%}
    {{ return(adapter.dispatch('meta_is_sha256_hex')(expression)) }}
{%- endmacro %}
{% macro default__meta_is_sha256_hex(expression) -%}{{ meta_unsupported('meta_is_sha256_hex') }}{%- endmacro %}
{% macro duckdb__meta_is_sha256_hex(expression) -%}
    (length({{ expression }}) = 64 and regexp_full_match({{ expression }}, '[0-9a-f]{64}'))
{%- endmacro %}

{#- Trimmed of all whitespace (`trim_whitespace`: tabs, line breaks, no-break spaces too), Unicode
    NFC-normalized (é as one code point), lower-cased text. -#}
{% macro meta_clean_lower(expression) -%}
    {{ return(adapter.dispatch('meta_clean_lower')(expression)) }}
{%- endmacro %}
{% macro default__meta_clean_lower(expression) -%}{{ meta_unsupported('meta_clean_lower') }}{%- endmacro %}
{% macro duckdb__meta_clean_lower(expression) -%}
    lower(nfc_normalize({{ trim_whitespace(expression) }}))
{%- endmacro %}

{#- The text with everything but letters removed (Unicode letters incl. accents, and combining marks). -#}
{% macro meta_letters_only(expression) -%}
    {{ return(adapter.dispatch('meta_letters_only')(expression)) }}
{%- endmacro %}
{% macro default__meta_letters_only(expression) -%}{{ meta_unsupported('meta_letters_only') }}{%- endmacro %}
{% macro duckdb__meta_letters_only(expression) -%}
    regexp_replace({{ expression }}, '[^\p{L}\p{M}]+', '', 'g')
{%- endmacro %}

{#- The text with everything but the ASCII digits 0-9 removed. -#}
{% macro meta_digits_only(expression) -%}
    {{ return(adapter.dispatch('meta_digits_only')(expression)) }}
{%- endmacro %}
{% macro default__meta_digits_only(expression) -%}{{ meta_unsupported('meta_digits_only') }}{%- endmacro %}
{% macro duckdb__meta_digits_only(expression) -%}
    regexp_replace({{ expression }}, '[^0-9]+', '', 'g')
{%- endmacro %}

{#- True when the text contains at least one letter (any script). -#}
{% macro meta_has_letter(expression) -%}
    {{ return(adapter.dispatch('meta_has_letter')(expression)) }}
{%- endmacro %}
{% macro default__meta_has_letter(expression) -%}{{ meta_unsupported('meta_has_letter') }}{%- endmacro %}
{% macro duckdb__meta_has_letter(expression) -%}
    regexp_matches({{ expression }}, '\p{L}')
{%- endmacro %}

{#-
    True when the (already trimmed, lower-cased) text looks like an e-mail address: no spaces,
    exactly one @, something before it, and a domain with a dot that has something on both sides.
-#}
{% macro meta_is_email(expression) -%}
    {{ return(adapter.dispatch('meta_is_email')(expression)) }}
{%- endmacro %}
{% macro default__meta_is_email(expression) -%}{{ meta_unsupported('meta_is_email') }}{%- endmacro %}
{% macro duckdb__meta_is_email(expression) -%}
    regexp_full_match({{ expression }}, '[^@\s]+@[^@\s.][^@\s]*\.[^@\s.][^@\s]*')
{%- endmacro %}

{#-
    The date written in `expression` as YYYYMMDD text, trying in order: YYYY-MM-DD, YYYYMMDD,
    YYYY/MM/DD, MM/DD/YYYY (US order for slashes), DD.MM.YYYY; month and day may have one digit
    where a separator follows. Null when no format fits, the date does not exist (1990-02-30) or
    the year is outside 1900-2099.
-#}
{% macro meta_parse_date_yyyymmdd(expression) -%}
    {{ return(adapter.dispatch('meta_parse_date_yyyymmdd')(expression)) }}
{%- endmacro %}
{% macro default__meta_parse_date_yyyymmdd(expression) -%}{{ meta_unsupported('meta_parse_date_yyyymmdd') }}{%- endmacro %}
{% macro duckdb__meta_parse_date_yyyymmdd(expression) -%}
    strftime(
        case
            when year(
                coalesce(
                    try_strptime({{ expression }}, '%Y-%m-%d'),
                    try_strptime({{ expression }}, '%Y%m%d'),
                    try_strptime({{ expression }}, '%Y/%m/%d'),
                    try_strptime({{ expression }}, '%m/%d/%Y'),
                    try_strptime({{ expression }}, '%d.%m.%Y')
                )
            ) between 1900 and 2099
                then coalesce(
                    try_strptime({{ expression }}, '%Y-%m-%d'),
                    try_strptime({{ expression }}, '%Y%m%d'),
                    try_strptime({{ expression }}, '%Y/%m/%d'),
                    try_strptime({{ expression }}, '%m/%d/%Y'),
                    try_strptime({{ expression }}, '%d.%m.%Y')
                )
        end,
        '%Y%m%d'
    )
{%- endmacro %}

{#-
    The `lookup_value` of the row of `lookup_sql` whose `lookup_key` equals `lookup_expression`
    (null when none): a correlated scalar subquery on an equality, which engines decorrelate into
    a hash join on the distinct lookup values. `lookup_sql` is a query returning unique, non-null
    `lookup_key`s (a small reference table such as a seed). Portable SQL; dispatched only because
    PostgreSQL does not decorrelate it (postgres__meta_lookup in macros/engines/postgres.sql).
-#}
{% macro meta_lookup(lookup_sql, lookup_expression) -%}
    {{ return(adapter.dispatch('meta_lookup')(lookup_sql, lookup_expression)) }}
{%- endmacro %}
{% macro default__meta_lookup(lookup_sql, lookup_expression) -%}
    (
        select min(meta_lookup_table.lookup_value)
        from ({{ lookup_sql }}) as meta_lookup_table
        where meta_lookup_table.lookup_key = {{ lookup_expression }}
    )
{%- endmacro %}
