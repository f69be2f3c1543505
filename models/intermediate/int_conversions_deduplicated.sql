{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='conversion_key',
        on_schema_change='append_new_columns',
    )
}}

{#-
    One row per conversion: the copies of one (conversion_type, event_id) reported within
    var('dedup_window_hours') of the first copy of their cluster (anchor-based, see the YAML).
    Incremental: every (conversion_type, event_id) with a copy loaded since the last run is
    recomputed from ALL its copies and replaces its previous rows (delete+insert on
    conversion_key), so a late copy updates its conversion instead of adding one, and a full
    refresh gives the same rows.
    person_id is the stitched person (as for events): the copies' person_id when one has it, else the
    person int_identity_map gives the copies' anonymous_id, else the pseudo-person
    `anon:<anonymous_id>`; person_source says which. An incremental run also recomputes the conversions
    of every anonymous id whose mapping changed since its last run (int_identity_map.mapped_loaded_at),
    and last_loaded_at becomes that load when it is later than the copies', so every incremental model
    downstream recomputes the conversion under its new person.
    The person an anonymous id was relinked away from (int_identity_previous_persons) may keep
    conversions of their own, whose attribution, new-vs-repeat order and summaries the moved rows changed:
    last_loaded_at of every conversion of such a person is at least the relink's load, and an
    incremental run recomputes the stored conversions of the persons of every anonymous id relinked since
    its last run (macro relinked_persons), so downstream models recompute them as a full refresh would.
-#}
{%- set window_hours = var('dedup_window_hours') -%}
{%- set attribute_columns = [
    'person_id', 'anonymous_id', 'campaign_id', 'ad_set_id', 'ad_id', 'order_id', 'meta_pixel_id',
    'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term',
    'fbclid', 'fbc', 'fbp', 'client_ip_address', 'client_user_agent', 'event_source_url',
    'device_type', 'browser', 'os', 'country', 'city', 'properties',
    'em_sha256', 'ph_sha256', 'fn_sha256', 'ln_sha256', 'db_sha256', 'ge_sha256',
    'ct_sha256', 'st_sha256', 'zp_sha256', 'country_sha256', 'external_id_sha256',
] -%}

with recursive copies as {{ not_materialized_cte_hint() }} (
    select * from {{ ref('int_conversion_identities') }}
),

identity_map as (
    select * from {{ ref('int_identity_map') }}
),

previous_persons as (
    -- Per person an anonymous id was relinked away from: the latest such relink's load.
    {{ latest_relink_away_by_person() }}
),

{% if is_incremental() -%}
    keyed_copies as (
        -- Keys with a copy loaded since the last run, or an anonymous copy whose anonymous id was
        -- (re)mapped since: all their copies are re-clustered.
        select copies.*
        from copies
        inner join (
            select
                copies.conversion_type,
                copies.event_id
            from copies
            where copies._loaded_at > {{ last_run_watermark('last_loaded_at') }}
            union
            select
                copies.conversion_type,
                copies.event_id
            from copies
            where
                copies.person_id is null
                and copies.anonymous_id in (
                    select identity_map.anonymous_id
                    from identity_map
                    where identity_map.mapped_loaded_at > {{ last_run_watermark('last_loaded_at') }}
                )
            union
            select
                stored.conversion_type,
                stored.event_id
            from {{ this }} as stored
            where stored.person_id in ({{ relinked_persons(last_run_watermark('last_loaded_at')) }})
        ) as changed_keys
            on
                copies.conversion_type = changed_keys.conversion_type
                and copies.event_id = changed_keys.event_id
    ),
{%- else -%}
    keyed_copies as (
        select * from copies
    ),
{%- endif %}

key_copies as (
    -- Copies per key: most keys have one copy, which is its conversion as it is (see
    -- single_copy_conversions); only keys with several copies are ordered, clustered and aggregated.
    select
        conversion_type,
        event_id,
        count(*) as key_copies_count
    from keyed_copies
    group by conversion_type, event_id
),

multi_copies as (
    select keyed_copies.*
    from keyed_copies
    inner join key_copies
        on
            keyed_copies.conversion_type = key_copies.conversion_type
            and keyed_copies.event_id = key_copies.event_id
            and key_copies.key_copies_count > 1
),

ordered_copies as (
    -- Copy order within a key: time of the conversion, then load order, then source; the first
    -- copy of a cluster is the one kept.
    select
        *,
        row_number() over (
            partition by conversion_type, event_id
            order by conversion_time, _loaded_at, conversion_source, _load_id, _source_file, _source_row
        ) as copy_number,
        min(conversion_time) over (partition by conversion_type, event_id) as first_conversion_time,
        max(conversion_time) over (partition by conversion_type, event_id) as last_conversion_time
    from multi_copies
),

spanning_copies as (
    -- Only keys whose copies span more than the window can have more than one cluster.
    select
        conversion_type,
        event_id,
        copy_number,
        conversion_time
    from ordered_copies
    where last_conversion_time > {{ dbt.dateadd('hour', window_hours, 'first_conversion_time') }}
),

cluster_anchors as (
    -- Walk each spanning key's copies in order: a copy more than the window after the current
    -- anchor starts a new cluster and becomes its anchor.
    select
        conversion_type,
        event_id,
        copy_number,
        conversion_time as anchor_time
    from spanning_copies
    where copy_number = 1

    union all

    select
        next_copy.conversion_type,
        next_copy.event_id,
        next_copy.copy_number,
        case
            when next_copy.conversion_time > {{ dbt.dateadd('hour', window_hours, 'previous_copy.anchor_time') }}
                then next_copy.conversion_time
            else previous_copy.anchor_time
        end as anchor_time
    from cluster_anchors as previous_copy
    inner join spanning_copies as next_copy
        on
            previous_copy.conversion_type = next_copy.conversion_type
            and previous_copy.event_id = next_copy.event_id
            and next_copy.copy_number = previous_copy.copy_number + 1
),

clustered_copies as (
    select
        ordered_copies.*,
        coalesce(cluster_anchors.anchor_time, ordered_copies.first_conversion_time) as anchor_time
    from ordered_copies
    left join cluster_anchors
        on
            ordered_copies.conversion_type = cluster_anchors.conversion_type
            and ordered_copies.event_id = cluster_anchors.event_id
            and ordered_copies.copy_number = cluster_anchors.copy_number
),

conversions as (
    -- One row per cluster: the first copy's values, gaps filled from later copies in copy order.
    select
        conversion_type,
        event_id,
        anchor_time,
        min(first_conversion_time) as first_conversion_time,
        {{ first_non_null('conversion_source', 'copy_number') }} as conversion_source,
        {%- for column_name in attribute_columns %}
            {{ first_non_null(column_name, 'copy_number') }} as {{ column_name }},
        {%- endfor %}
        -- Value and currency travel together: taken from the first copy with a positive value
        -- (staging reads a missing value as 0); without one the value is 0.
        coalesce({{ first_non_null('value_cents', 'copy_number', 'value_cents > 0') }}, 0) as value_cents,
        coalesce(
            {{ first_non_null('currency', 'copy_number', 'value_cents > 0') }},
            case when max(value_cents) = 0 then {{ first_non_null('currency', 'copy_number') }} end
        ) as currency,
        -- Consent: the strictest copy wins (one copy denied: denied; else one granted: granted).
        case
            when max(case when consent_ads = 'denied' then 1 else 0 end) = 1 then 'denied'
            when max(case when consent_ads = 'granted' then 1 else 0 end) = 1 then 'granted'
            else 'unknown'
        end as consent_ads,
        {{ first_non_null('ldu_state_code', 'copy_number') }} as ldu_state_code,
        max(case when opt_out then 1 else 0 end) = 1 as opt_out,
        max(case when limited_data_use then 1 else 0 end) = 1 as limited_data_use,
        max(case when conversion_source = 'capi' then 1 else 0 end) as has_capi_copy,
        max(case when conversion_source = 'pixel' then 1 else 0 end) as has_pixel_copy,
        max(case when conversion_source = 'webhook' then 1 else 0 end) as has_webhook_copy,
        cast(count(*) as {{ dbt.type_int() }}) as copies_count,
        -- Fields some copy had but could not be normalized (per-copy lists, joined; see final).
        {{ dbt.listagg('dropped_user_data_field_names', "','") }} as dropped_in_copies,
        min(conversion_time) as conversion_time,
        min(_loaded_at) as created_at,
        max(_loaded_at) as last_loaded_at
    from clustered_copies
    group by conversion_type, event_id, anchor_time
),

single_copy_conversions as (
    -- A key with one copy: the same columns as `conversions` above, for a group of that one copy.
    select
        keyed_copies.conversion_type,
        keyed_copies.event_id,
        keyed_copies.conversion_time as anchor_time,
        keyed_copies.conversion_time as first_conversion_time,
        keyed_copies.conversion_source,
        {%- for column_name in attribute_columns %}
            keyed_copies.{{ column_name }},
        {%- endfor %}
        coalesce(case when keyed_copies.value_cents > 0 then keyed_copies.value_cents end, 0) as value_cents,
        case when keyed_copies.value_cents >= 0 then keyed_copies.currency end as currency,
        coalesce(keyed_copies.consent_ads, 'unknown') as consent_ads,
        keyed_copies.ldu_state_code,
        coalesce(keyed_copies.opt_out, false) as opt_out,
        coalesce(keyed_copies.limited_data_use, false) as limited_data_use,
        case when keyed_copies.conversion_source = 'capi' then 1 else 0 end as has_capi_copy,
        case when keyed_copies.conversion_source = 'pixel' then 1 else 0 end as has_pixel_copy,
        case when keyed_copies.conversion_source = 'webhook' then 1 else 0 end as has_webhook_copy,
        cast(1 as {{ dbt.type_int() }}) as copies_count,
        keyed_copies.dropped_user_data_field_names as dropped_in_copies,
        keyed_copies.conversion_time,
        keyed_copies._loaded_at as created_at,
        keyed_copies._loaded_at as last_loaded_at
    from keyed_copies
    inner join key_copies
        on
            keyed_copies.conversion_type = key_copies.conversion_type
            and keyed_copies.event_id = key_copies.event_id
            and key_copies.key_copies_count = 1
),

all_conversions as (
    select * from conversions
    union all
    select * from single_copy_conversions
),

stitched_conversions as (
    -- The person int_identity_map gives the anonymous id of a conversion landed without a person_id.
    select
        all_conversions.*,
        identity_map.person_id as mapped_person_id,
        identity_map.mapped_loaded_at
    from all_conversions
    left join identity_map
        on
            all_conversions.person_id is null
            and all_conversions.anonymous_id = identity_map.anonymous_id
),

relinked_conversions as (
    -- The latest load of a relink that moved an anonymous id away from the conversion's person.
    select
        stitched_conversions.*,
        case
            when
                stitched_conversions.person_id is null
                and stitched_conversions.mapped_loaded_at > stitched_conversions.last_loaded_at
                then stitched_conversions.mapped_loaded_at
            else stitched_conversions.last_loaded_at
        end as stitched_loaded_at,
        previous_persons.relinked_loaded_at
    from stitched_conversions
    left join previous_persons
        on
            previous_persons.person_id
            = coalesce(stitched_conversions.person_id, stitched_conversions.mapped_person_id)
),

final as (
    select
        case
            when anchor_time = first_conversion_time
                then {{ uuid_from_columns(['conversion_type', 'event_id']) }}
            else {{ uuid_from_columns(['conversion_type', 'event_id', epoch_microseconds('anchor_time')]) }}
        end as id,
        {{ uuid_from_columns(['conversion_type', 'event_id']) }} as conversion_key,
        event_id,
        case
            when person_id is not null then person_id
            when mapped_person_id is not null then mapped_person_id
            else {{ pseudo_person_id('anonymous_id') }}
        end as person_id,
        campaign_id,
        ad_set_id,
        ad_id,
        order_id,
        meta_pixel_id,
        conversion_type,
        conversion_source,
        -- Sorted, so the same sources always give the same text.
        concat_ws(
            ',',
            case when has_capi_copy = 1 then 'capi' end,
            case when has_pixel_copy = 1 then 'pixel' end,
            case when has_webhook_copy = 1 then 'webhook' end
        ) as reported_by_sources,
        currency,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        utm_term,
        fbclid,
        fbc,
        fbp,
        client_ip_address,
        client_user_agent,
        event_source_url,
        device_type,
        browser,
        os,
        country,
        city,
        properties,
        consent_ads,
        em_sha256,
        ph_sha256,
        fn_sha256,
        ln_sha256,
        db_sha256,
        ge_sha256,
        ct_sha256,
        st_sha256,
        zp_sha256,
        country_sha256,
        external_id_sha256,
        -- Dropped: a copy had the field but could not normalize it, and no copy could.
        {{ meta_dropped_user_data_names(meta_fields_named_in('dropped_in_copies')) }} as dropped_user_data_field_names,
        value_cents,
        ldu_state_code,
        copies_count,
        {{ meta_dropped_user_data_count(meta_fields_named_in('dropped_in_copies')) }} as dropped_user_data_fields,
        opt_out,
        limited_data_use,
        conversion_time,
        created_at,
        -- The copies' latest load, or the identity observation's when that came later and gave the person,
        -- or the load of a relink that moved an anonymous id away from the person, when later still.
        case
            when relinked_loaded_at > stitched_loaded_at then relinked_loaded_at
            else stitched_loaded_at
        end as last_loaded_at,
        anonymous_id,
        case
            when person_id is not null then 'landed'
            when mapped_person_id is not null then 'identity'
            else 'anonymous'
        end as person_source
    from relinked_conversions
)

select * from final
