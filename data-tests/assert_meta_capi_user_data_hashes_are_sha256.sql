-- Every hashed user_data value in a meta_capi_events payload is an array of 64 lower-case hex digits.
-- The hashes come with the valued conversions: on an incremental build only the events of the
-- conversions whose keys this run rewrote are read (test_scope, macros/test_scope.sql).
{%- set hashed_fields = ['em', 'ph', 'fn', 'ln', 'db', 'ge', 'ct', 'st', 'zp', 'country', 'external_id'] %}

with touched_conversions as (
    select id
    from {{ ref('int_conversions_valued') }}
    where {{ test_scope('last_loaded_at', key='conversion_key', relation=ref('int_conversions_valued')) }}
),

events as (
    select * from {{ ref('meta_capi_events') }}
    where conversion_id in (select touched_conversions.id from touched_conversions)
),

hashed_values as (
    {{ meta_user_data_values('events', hashed_fields) }}
)

select *
from hashed_values
where
    value_type is not null
    and (value_type <> 'ARRAY' or not {{ meta_is_sha256_hex('hashed_value') }})
