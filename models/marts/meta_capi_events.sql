{#-
    What `convopt export-meta` sends to Meta's Conversions API: one row per conversion whose
    conversion_type has a rule in seed `optimization_rules`, with its status (ready / expired /
    skipped) and the event object exactly as it goes into the request's `data` array (`payload`).
    The 7-day window is measured from var `meta_export_as_of` when set, else from the build time.
-#}
{%- set as_of = var('meta_export_as_of') -%}
{%- if as_of -%}
    {%- set reference_time = "cast('" ~ as_of ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
{%- else -%}
    {%- set reference_time = dbt.current_timestamp() -%}
{%- endif -%}
{%- set max_age_seconds = 7 * 24 * 3600 -%}
{%- set physical_store_max_age_seconds = 62 * 24 * 3600 -%}
{%- set hashed_fields = meta_user_data_fields() -%}
{%- set hashed_members = [] -%}
{%- for field in hashed_fields -%}
    {%- do hashed_members.append(meta_json_hash_member(field, 'classified.' ~ field ~ '_sha256')) -%}
{%- endfor -%}

with conversions as (
    select * from {{ ref('int_conversions_valued') }}
),

rules as (
    select * from {{ ref('optimization_rules') }}
),

ruled as (
    -- Conversions without a rule are not Meta events at all: inner join.
    select
        conversions.*,
        rules.meta_event_name,
        rules.is_sent as is_rule_sent,
        rules.min_value_cents,
        rules.value_multiplier,
        rules.action_source,
        rules.qualifying_sources,
        cast(floor({{ epoch_microseconds('conversions.conversion_time') }} / 1000000.0) as {{ dbt.type_bigint() }})
            as event_time,
        cast(floor({{ epoch_microseconds(reference_time) }} / 1000000.0) as {{ dbt.type_bigint() }})
            as reference_time
    from conversions
    inner join rules
        on conversions.conversion_type = rules.conversion_type
),

prepared as (
    select
        ruled.*,
        coalesce(
            ruled.fbc,
            case
                when ruled.fbclid is not null
                    then
                        'fb.1.'
                        || cast(
                            cast(
                                floor(
                                    {{ epoch_microseconds('ruled.conversion_time') }} / 1000.0
                                ) as {{ dbt.type_bigint() }}
                            )
                            as {{ dbt.type_string() }}
                        )
                        || '.' || ruled.fbclid
            end
        ) as fbc_sent,
        case
            when ruled.value_cents is not null
                then cast(ruled.value_cents * ruled.value_multiplier / 100 as decimal(18, 2))
        end as value_sent,
        -- Why the optimization rule does not select the conversion (null: it does, it is eligible).
        case
            when not ruled.is_rule_sent
                then 'rule for ' || ruled.conversion_type || ' is not sent (is_sent = false)'
            when
                '|' || ruled.qualifying_sources || '|'
                not like '%|' || coalesce(ruled.conversion_source, '') || '|%'
                then
                    'conversion_source ' || coalesce(ruled.conversion_source, 'null')
                    || ' does not qualify (qualifying_sources ' || ruled.qualifying_sources || ')'
            when coalesce(ruled.value_cents, 0) < ruled.min_value_cents
                then
                    'value_cents ' || coalesce(cast(ruled.value_cents as {{ dbt.type_string() }}), 'null')
                    || ' is below min_value_cents ' || cast(ruled.min_value_cents as {{ dbt.type_string() }})
        end as rule_skip_reason,
        -- Meta rejects a website event without the browser's user agent and the page URL.
        case
            when
                ruled.action_source = 'website'
                and (ruled.client_user_agent is null or ruled.event_source_url is null)
                then
                    'website event without '
                    || concat_ws(
                        ' and ',
                        case when ruled.client_user_agent is null then 'client_user_agent' end,
                        case when ruled.event_source_url is null then 'event_source_url' end
                    )
                    || ' (Meta requires both for action_source website)'
        end as missing_fields_reason,
        case
            when ruled.event_time > ruled.reference_time
                then 'event_time is in the future of the reference time'
            when
                ruled.event_time < ruled.reference_time - case
                    when ruled.action_source = 'physical_store' then {{ physical_store_max_age_seconds }}
                    else {{ max_age_seconds }}
                end
                then
                    'event_time is more than '
                    || case when ruled.action_source = 'physical_store' then '62' else '7' end
                    || ' days before the reference time'
        end as window_reason
    from ruled
),

classified as (
    -- Rule first, then the fields Meta requires (both permanent: skipped), then the time window.
    select
        prepared.*,
        prepared.rule_skip_reason is null as is_eligible,
        case
            when prepared.rule_skip_reason is not null or prepared.missing_fields_reason is not null
                then 'skipped'
            when prepared.window_reason is not null
                then 'expired'
            else 'ready'
        end as status,
        coalesce(prepared.rule_skip_reason, prepared.missing_fields_reason, prepared.window_reason)
            as status_reason
    from prepared
),

with_payload as (
    select
        classified.*,
        {{ meta_json_object(
            hashed_members
            + [
                meta_json_member('client_ip_address', 'classified.client_ip_address'),
                meta_json_member('client_user_agent', 'classified.client_user_agent'),
                meta_json_member('fbc', 'classified.fbc_sent'),
                meta_json_member('fbp', 'classified.fbp'),
            ]
        ) }} as user_data_json,
        {{ meta_json_object([
            meta_json_member('value', 'classified.value_sent'),
            meta_json_member('currency', 'classified.currency'),
            meta_json_member('order_id', 'classified.order_id'),
        ]) }} as custom_data_json,
        (
            {%- for f in hashed_fields %}
                case when classified.{{ f }}_sha256 is not null then 1 else 0 end{% if not loop.last %} +{% endif %}
            {%- endfor %}
        ) as hashed_user_data_fields
    from classified
),

final as (
    select
        id as conversion_id,
        event_id,
        coalesce(meta_pixel_id, '{{ var("meta_default_pixel_id") }}') as pixel_id,
        meta_event_name as event_name,
        action_source,
        status,
        status_reason,
        {{ meta_json_object([
            meta_json_member('event_name', 'meta_event_name'),
            meta_json_member('event_time', 'event_time'),
            meta_json_member('event_id', 'event_id'),
            meta_json_member('action_source', 'action_source'),
            meta_json_member('event_source_url', 'event_source_url'),
            meta_json_raw_member('user_data', 'user_data_json'),
            meta_json_raw_member('custom_data', 'custom_data_json'),
        ]) }} as payload,
        conversion_type,
        conversion_source,
        dropped_user_data_field_names,
        event_time,
        hashed_user_data_fields,
        dropped_user_data_fields,
        is_eligible,
        conversion_time
    from with_payload
)

select * from final
