-- One row per landed identity observation ("this anonymous id was seen being this person"), typed and
-- trimmed; no rows dropped. Which person an anonymous id belongs to is decided in int_identity_map.
with source as (
    select * from {{ source('raw', 'identities') }}
),

renamed as (
    select
        {{ clean_string('anonymous_id') }} as anonymous_id,
        {{ clean_string('person_id') }} as person_id,
        observed_at,
        {{ clean_lower('source') }} as source,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
)

select * from renamed
