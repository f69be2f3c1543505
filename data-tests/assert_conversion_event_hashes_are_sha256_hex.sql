-- The identity columns of conversion_event hold SHA-256 hex digests (64 lower-case hex digits) or
-- null: never a clear value. Fails with the offending id and column. On an incremental build it reads
-- the conversions this run rewrote (test_scope, macros/test_scope.sql).
{%- set hashed_columns = [
    'em_sha256', 'ph_sha256', 'fn_sha256', 'ln_sha256', 'db_sha256', 'ge_sha256',
    'ct_sha256', 'st_sha256', 'zp_sha256', 'country_sha256', 'external_id_sha256',
] %}

with conversions as (
    select * from {{ ref('conversion_event') }}
    where {{ test_scope(['last_loaded_at', 'optimized_at'], key='conversion_key', relation=ref('conversion_event')) }}
),

final as (
    {%- for column_name in hashed_columns %}
        select
            id,
            '{{ column_name }}' as column_name
        from conversions
        where {{ column_name }} is not null and not {{ meta_is_sha256_hex(column_name) }}
        {%- if not loop.last %}

            union all
        {% endif %}
    {%- endfor %}
)

select * from final
