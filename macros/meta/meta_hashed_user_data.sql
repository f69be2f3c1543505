{#-
    The value Meta's Conversions API expects for user-data field `field` (em, ph, fn, ln, db, ge,
    ct, st, zp, country, external_id): the raw `expression` normalized with that field's
    `meta_normalize_*` macro, then SHA-256 hex (`meta_sha256`). A raw value that already is a
    64-hex SHA-256 is passed through lower-cased (checked before normalizing, which would reject it).
    `country_expression` is the conversion's country (code or name): ph and zp need it.
-#}
{% macro meta_hashed_user_data(field, expression, country_expression=none) -%}
    {%- set normalizers = {
        'em': meta_normalize_email,
        'fn': meta_normalize_name,
        'ln': meta_normalize_name,
        'db': meta_normalize_dob,
        'ge': meta_normalize_gender,
        'ct': meta_normalize_city,
        'st': meta_normalize_state,
        'country': meta_normalize_country,
        'external_id': meta_normalize_external_id,
    } -%}
    {%- if field == 'ph' -%}
        {%- set normalized = meta_normalize_phone(expression, country_expression) -%}
    {%- elif field == 'zp' -%}
        {%- set normalized = meta_normalize_zip(expression, country_expression) -%}
    {%- elif field in normalizers -%}
        {%- set normalized = normalizers[field](expression) -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("meta_hashed_user_data: unknown field '" ~ field ~ "'") }}
    {%- endif -%}
    {{ meta_hash_normalized(expression, normalized) }}
{%- endmacro %}

{#-
    SHA-256 hex of `normalized_expression` (a value normalized for Meta), unless the raw
    `expression` already is a 64-hex SHA-256: then that, lower-cased. For models that normalize
    with precomputed helpers (e.g. `meta_phone_with_calling_code`) instead of `meta_hashed_user_data`.
-#}
{% macro meta_hash_normalized(expression, normalized_expression) -%}
    case
        when {{ meta_is_sha256_hex('lower(' ~ trim_whitespace(expression) ~ ')') }} then lower({{ trim_whitespace(expression) }})
        else {{ meta_sha256_hex(normalized_expression) }}
    end
{%- endmacro %}
