{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['conversion_type', 'event_id'],
        on_schema_change='append_new_columns',
        pre_hook=[
            "{% if is_incremental() %}{{ delete_meta_capi_events_without_rule(this) }}{% endif %}",
            "{{ force_table_compression('zstd') }}",
        ],
        post_hook=[
            "{{ reset_table_compression() }}",
            "{{ record_incremental_state(
                '(select max(last_loaded_at) from ' ~ ref('int_conversions_valued') ~ ')',
                '(' ~ meta_capi_settings_hash() ~ ')',
            ) }}",
        ],
    )
}}

{#-
    What `convopt export-meta` sends to Meta's Conversions API: one row per conversion whose
    conversion_type has a rule in seed `optimization_rules`, with its status (ready / expired /
    skipped) and the event object exactly as it goes into the request's `data` array (`payload`).
    The 7-day window is measured from var `meta_export_as_of` when set, else from the build time.

    Incremental, by conversion. A run recomputes
      * the (conversion_type, event_id) keys with a conversion loaded since the previous build (a new
        conversion, or a late copy that fills identities or the value, or re-anchors the key's
        clusters and so changes its ids): `last_loaded_at` after the `loaded_through` of its recorded state
        (audit.incremental_state, macros/incremental_state.sql; this table has no column to keep it in);
      * the keys of stored rows whose status this run's reference time changes: the window reason of
        the row's own event_time and action_source (meta_event_window_reason) differs from its stored
        status_reason. Skipped rows never change with time; a ready row expires when it gets too old,
        an expired-because-future row becomes ready, and, when the reference time is set back, an
        expired row can become ready again. Nothing else in a row depends on time;
      * every key when no state was recorded yet, or when the optimization rules or var
        `meta_default_pixel_id` differ from the recorded fingerprint (meta_capi_settings_hash);
    and replaces all rows of those keys (delete+insert on conversion_type, event_id: a key can hold
    several conversions, whose ids change when a late copy re-anchors them). The pre-hook deletes the
    rows of types whose rule was removed; the post-hook records the state. So an incremental run
    gives the rows a full refresh gives at the same reference time.

    The table is stored zstd-compressed on DuckDB (macros/table_compression.sql): the payload text is
    most of it, and zstd stores it in about a third of the space for about half the CPU of DuckDB's
    default string compression.
-#}
{%- set as_of = var('meta_export_as_of') -%}
{%- if as_of -%}
    {%- set reference_timestamp = "cast('" ~ as_of ~ "' as " ~ dbt.type_timestamp() ~ ")" -%}
{%- else -%}
    {%- set reference_timestamp = dbt.current_timestamp() -%}
{%- endif -%}
{%- set reference_time = "cast(floor(" ~ epoch_microseconds(reference_timestamp) ~ " / 1000000.0) as "
    ~ dbt.type_bigint() ~ ")" -%}
{%- set default_consent = var('meta_default_consent') -%}
{%- if default_consent not in ('send', 'skip') -%}
    {{ exceptions.raise_compiler_error(
        "var meta_default_consent must be 'send' or 'skip' (what to do with a conversion whose consent_ads "
        ~ "is unknown), got '" ~ default_consent ~ "'"
    ) }}
{%- endif -%}
{#- The rules' optional limited_data_use column (a rules file written before it existed has none: false). -#}
{%- set rule_columns = [] -%}
{%- if execute -%}
    {%- set rule_columns = adapter.get_columns_in_relation(ref('optimization_rules'))
        | map(attribute='name') | map('lower') | list -%}
{%- endif -%}
{%- if not rule_columns or 'limited_data_use' in rule_columns -%}
    {%- set rule_limited_data_use = 'coalesce(cast(rules.limited_data_use as ' ~ dbt.type_boolean() ~ '), false)' -%}
{%- else -%}
    {%- set rule_limited_data_use = 'false' -%}
{%- endif -%}
{%- set hashed_fields = meta_user_data_fields() -%}
{%- set hashed_members = [] -%}
{%- for field in hashed_fields -%}
    {%- do hashed_members.append(meta_json_hash_member(field, 'classified.' ~ field ~ '_sha256')) -%}
{%- endfor -%}

with conversions as {{ not_materialized_cte_hint() }} (
    select * from {{ ref('int_conversions_valued') }}
),

rules as (
    select * from {{ ref('optimization_rules') }}
),

{% if is_incremental() %}
    previous_build as (
        -- The newest load the last build had read, if it used the same rules and default pixel;
        -- else 1970, so that every conversion is recomputed.
        select
            case
                when {{ incremental_state_is_current('(' ~ meta_capi_settings_hash() ~ ')') }}
                    then {{ incremental_state_value('loaded_through') }}
                else cast('1970-01-01 00:00:00+00' as {{ type_timestamp_tz() }})
            end as loaded_at
    ),

    changed_keys as (
        select
            conversions.conversion_type,
            conversions.event_id
        from conversions
        where conversions.last_loaded_at > (select previous_build.loaded_at from previous_build)

        union

        -- Rows whose status this run's reference time changes (see the header).
        select
            previous_rows.conversion_type,
            previous_rows.event_id
        from {{ this }} as previous_rows
        where
            previous_rows.status <> 'skipped'
            and coalesce(previous_rows.status_reason, '') <> coalesce(
                {{ meta_event_window_reason(
                    'previous_rows.event_time', reference_time, 'previous_rows.action_source'
                ) }},
                ''
            )
    ),

    changed_conversions as (
        select conversions.*
        from conversions
        inner join changed_keys
            on
                conversions.conversion_type = changed_keys.conversion_type
                and conversions.event_id = changed_keys.event_id
    ),
{% else %}
    changed_conversions as (
        select * from conversions
    ),
{% endif %}

-- custom_data from the conversion's `properties` (docs/meta.md has the mapping). Only conversions whose
-- properties hold an array are unnested; each element is checked and written again as Meta's JSON, and
-- a field with an invalid value is left out whole and named in dropped_custom_data_field_names.
{%- set whole_number = '[1-9][0-9]{0,8}' %}
{%- set amount = '[0-9]{1,12}([.][0-9]+)?' %}
content_elements as (
    select
        id as conversion_id,
        {{ json_unnest_array_strings('properties', ['contents'], '') }} as element
    from changed_conversions
    where properties like '%"contents"%' and {{ json_type_name('properties', ['contents']) }} = 'ARRAY'
),

checked_content_elements as (
    select
        conversion_id,
        content_id,
        quantity_text,
        item_price_text,
        content_id is not null
        and trim(content_id) <> ''
        and (quantity_text is null or {{ regexp_full_match('quantity_text', whole_number) }})
        and (item_price_text is null or {{ regexp_full_match('item_price_text', amount) }}) as is_valid
    from (
        select
            conversion_id,
            case
                when
                    substr(element, 1, 1) = '{'
                    and {{ json_type_name('element', ['id']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                    then {{ json_text('element', ['id']) }}
            end as content_id,
            case when substr(element, 1, 1) = '{' then {{ json_text('element', ['quantity']) }} end as quantity_text,
            case when substr(element, 1, 1) = '{' then {{ json_text('element', ['item_price']) }} end as item_price_text
        from content_elements
    ) as elements
),

contents_from_arrays as (
    select
        conversion_id,
        min(case when is_valid then 1 else 0 end) = 1 as is_valid,
        {{ dbt.listagg(
            measure="'{\"id\":' || " ~ meta_to_json('content_id')
                ~ " || coalesce(',\"quantity\":' || cast(cast(quantity_text as " ~ dbt.type_bigint() ~ ") as "
                ~ dbt.type_string() ~ "), '')"
                ~ " || coalesce(',\"item_price\":' || " ~ meta_to_json(round_decimal(
                    'cast(item_price_text as decimal(18, 6))', 2)) ~ ", '') || '}'",
            delimiter_text="','",
            order_by_clause="order by content_id, quantity_text, item_price_text",
        ) }} as contents_json
    from checked_content_elements
    group by conversion_id
),

content_id_elements as (
    select
        id as conversion_id,
        {{ json_unnest_array_strings('properties', ['content_ids'], '') }} as element
    from changed_conversions
    where properties like '%"content_ids"%' and {{ json_type_name('properties', ['content_ids']) }} = 'ARRAY'
),

content_ids_from_arrays as (
    select
        conversion_id,
        min(
            case
                when trim(element) <> '' and substr(element, 1, 1) not in ('{', '[') then 1
                else 0
            end
        ) = 1 as is_valid,
        {{ dbt.listagg(meta_to_json('element'), "','", 'order by element') }} as content_ids_json
    from content_id_elements
    group by conversion_id
),

custom_data_values as (
    -- The scalar fields, as text (null when absent), and the single-item shape (sku, items,
    -- unit_price_cents) that stands for contents and content_ids when those are not given.
    select
        id as conversion_id,
        case
            when {{ json_type_name('properties', ['content_type']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                then lower(trim({{ json_text('properties', ['content_type']) }}))
        end as content_type_text,
        case
            when {{ json_type_name('properties', ['num_items']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                then {{ json_text('properties', ['num_items']) }}
        end as num_items_text,
        case
            when {{ json_type_name('properties', ['predicted_ltv']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                then {{ json_text('properties', ['predicted_ltv']) }}
        end as predicted_ltv_text,
        case
            when {{ json_type_name('properties', ['order_id']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                then trim({{ json_text('properties', ['order_id']) }})
        end as order_id_text,
        {{ json_type_name('properties', ['content_type']) }} is not null as has_content_type,
        {{ json_type_name('properties', ['num_items']) }} is not null as has_num_items,
        {{ json_type_name('properties', ['predicted_ltv']) }} is not null as has_predicted_ltv,
        {{ json_type_name('properties', ['order_id']) }} is not null as has_order_id,
        {{ json_type_name('properties', ['contents']) }} as contents_type_name,
        {{ json_type_name('properties', ['content_ids']) }} as content_ids_type_name,
        case
            when {{ json_type_name('properties', ['sku']) }} not in ('OBJECT', 'ARRAY', 'BOOLEAN')
                then nullif(trim({{ json_text('properties', ['sku']) }}), '')
        end as sku,
        {{ json_text('properties', ['items']) }} as items_text,
        {{ json_text('properties', ['unit_price_cents']) }} as unit_price_cents_text
    from changed_conversions
    -- Parsing JSON is the costly part: only properties that name one of the keys (a cheap text test).
    where
        properties like '%"content%'
        or properties like '%"num_items"%'
        or properties like '%"predicted_ltv"%'
        or properties like '%"order_id"%'
        or properties like '%"sku"%'
),

sku_checks as (
    -- The single-item shape is used only when its quantity and unit price are valid (or absent).
    select
        custom_data_values.*,
        (
            custom_data_values.items_text is null
            or {{ regexp_full_match('custom_data_values.items_text', whole_number) }}
        )
        and (
            custom_data_values.unit_price_cents_text is null
            or {{ regexp_full_match('custom_data_values.unit_price_cents_text', '[0-9]{1,12}') }}
        ) as is_valid_item
    from custom_data_values
),

custom_data_fields as (
    -- Each custom_data field as JSON text (null: not sent), and whether a given value was dropped.
    select
        custom_data_values.conversion_id,
        case
            when custom_data_values.contents_type_name is not null
                then
                    case
                        when contents_from_arrays.is_valid then '[' || contents_from_arrays.contents_json || ']'
                    end
            when custom_data_values.sku is not null and custom_data_values.is_valid_item
                then
                    '[{"id":' || {{ meta_to_json('custom_data_values.sku') }}
                    || coalesce(
                        ',"quantity":' || cast(
                            cast(custom_data_values.items_text as {{ dbt.type_bigint() }}) as {{ dbt.type_string() }}
                        ),
                        ''
                    )
                    || coalesce(
                        ',"item_price":' || {{ meta_to_json(round_decimal(
                            'cast(custom_data_values.unit_price_cents_text as decimal(18, 6)) / 100', 2
                        )) }},
                        ''
                    )
                    || '}]'
        end as contents_json,
        case
            when custom_data_values.content_ids_type_name is not null
                then
                    case
                        when content_ids_from_arrays.is_valid
                            then '[' || content_ids_from_arrays.content_ids_json || ']'
                    end
            when custom_data_values.sku is not null
                then '[' || {{ meta_to_json('custom_data_values.sku') }} || ']'
        end as content_ids_json,
        case
            when custom_data_values.content_type_text in ('product', 'product_group')
                then custom_data_values.content_type_text
            when custom_data_values.has_content_type then null
            when custom_data_values.sku is not null then 'product'
        end as content_type,
        case
            when {{ regexp_full_match('custom_data_values.num_items_text', whole_number) }}
                then cast(custom_data_values.num_items_text as {{ dbt.type_bigint() }})
            when custom_data_values.has_num_items then null
            when custom_data_values.sku is not null and custom_data_values.is_valid_item
                then cast(custom_data_values.items_text as {{ dbt.type_bigint() }})
        end as num_items,
        case
            when {{ regexp_full_match('custom_data_values.predicted_ltv_text', amount) }}
                then {{ round_decimal('cast(custom_data_values.predicted_ltv_text as decimal(18, 6))', 2) }}
        end as predicted_ltv,
        case
            when custom_data_values.order_id_text <> '' and length(custom_data_values.order_id_text) <= 128
                then custom_data_values.order_id_text
        end as properties_order_id,
        -- Dropped: given, but not a value Meta takes (an empty array is not dropped, just not sent).
        (
            custom_data_values.contents_type_name is not null
            and (
                custom_data_values.contents_type_name <> 'ARRAY'
                or not coalesce(contents_from_arrays.is_valid, true)
            )
        )
        or (
            custom_data_values.contents_type_name is null
            and custom_data_values.sku is not null
            and not custom_data_values.is_valid_item
        ) as is_contents_dropped,
        custom_data_values.content_ids_type_name is not null
        and (
            custom_data_values.content_ids_type_name <> 'ARRAY'
            or not coalesce(content_ids_from_arrays.is_valid, true)
        ) as is_content_ids_dropped,
        custom_data_values.has_content_type
        and coalesce(custom_data_values.content_type_text not in ('product', 'product_group'), true)
            as is_content_type_dropped,
        custom_data_values.has_num_items
        and not coalesce({{ regexp_full_match('custom_data_values.num_items_text', whole_number) }}, false)
            as is_num_items_dropped,
        custom_data_values.has_predicted_ltv
        and not coalesce({{ regexp_full_match('custom_data_values.predicted_ltv_text', amount) }}, false)
            as is_predicted_ltv_dropped,
        custom_data_values.has_order_id
        and not coalesce(
            custom_data_values.order_id_text <> '' and length(custom_data_values.order_id_text) <= 128, false
        ) as is_order_id_dropped
    from sku_checks as custom_data_values
    left join contents_from_arrays
        on custom_data_values.conversion_id = contents_from_arrays.conversion_id
    left join content_ids_from_arrays
        on custom_data_values.conversion_id = content_ids_from_arrays.conversion_id
),

ruled as (
    -- Conversions without a rule are not Meta events at all: inner join.
    select
        changed_conversions.*,
        rules.meta_event_name,
        rules.is_sent as is_rule_sent,
        rules.min_value_cents,
        rules.value_multiplier,
        rules.action_source,
        rules.qualifying_sources,
        {{ rule_limited_data_use }} as is_rule_limited_data_use,
        cast(
            floor({{ epoch_microseconds('changed_conversions.conversion_time') }} / 1000000.0)
            as {{ dbt.type_bigint() }}
        ) as event_time,
        {{ reference_time }} as reference_time,
        custom_data_fields.contents_json,
        custom_data_fields.content_ids_json,
        custom_data_fields.content_type,
        custom_data_fields.num_items,
        coalesce(changed_conversions.order_id, custom_data_fields.properties_order_id) as order_id_sent,
        custom_data_fields.predicted_ltv,
        -- Custom data values given but not sendable, in payload order; the order_id of properties only
        -- counts when the conversion has none of its own.
        nullif(concat_ws(
            ',',
            case when custom_data_fields.is_contents_dropped then 'contents' end,
            case when custom_data_fields.is_content_ids_dropped then 'content_ids' end,
            case when custom_data_fields.is_content_type_dropped then 'content_type' end,
            case when custom_data_fields.is_num_items_dropped then 'num_items' end,
            case
                when custom_data_fields.is_order_id_dropped and changed_conversions.order_id is null
                    then 'order_id'
            end,
            case when custom_data_fields.is_predicted_ltv_dropped then 'predicted_ltv' end
        ), '') as dropped_custom_data_field_names
    from changed_conversions
    inner join rules
        on changed_conversions.conversion_type = rules.conversion_type
    left join custom_data_fields
        on changed_conversions.id = custom_data_fields.conversion_id
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
        -- The person's consent (var meta_default_consent decides for an unknown one).
        case
            when ruled.consent_ads = 'denied'
                then 'consent_ads is denied (not sent; no identity field in the payload)'
            when coalesce(ruled.consent_ads, 'unknown') = 'unknown' and '{{ default_consent }}' = 'skip'
                then
                    'consent_ads is unknown and var meta_default_consent is skip '
                    || '(not sent; no identity field in the payload)'
        end as consent_reason,
        -- Limited Data Use, asked for by the conversion or by its rule.
        coalesce(ruled.limited_data_use, false) or ruled.is_rule_limited_data_use as is_limited_data_use,
        -- Meta rejects a website event without the browser's user agent and the page URL, and an
        -- app event without app_data, which convopt does not build.
        case
            when ruled.action_source = 'app'
                then
                    'app event without app_data (Meta requires advertiser_tracking_enabled, '
                    || 'application_tracking_enabled and extinfo for action_source app)'
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
        {{ meta_event_window_reason('ruled.event_time', 'ruled.reference_time', 'ruled.action_source') }}
            as window_reason
    from ruled
),

classified as (
    -- Consent first, then the rule, then the fields Meta requires (all permanent: skipped), then the
    -- time window.
    select
        prepared.*,
        prepared.rule_skip_reason is null as is_eligible,
        case
            when
                prepared.consent_reason is not null
                or prepared.rule_skip_reason is not null
                or prepared.missing_fields_reason is not null
                then 'skipped'
            when prepared.window_reason is not null
                then 'expired'
            else 'ready'
        end as status,
        coalesce(
            prepared.consent_reason, prepared.rule_skip_reason, prepared.missing_fields_reason, prepared.window_reason
        ) as status_reason,
        -- Without consent no identity field (hashed or clear) goes into the payload.
        prepared.consent_reason is not null as is_identity_withheld
    from prepared
),

with_payload as (
    select
        classified.*,
        case
            when classified.is_identity_withheld then '{}'
            else {{ meta_json_object(
                hashed_members
                + [
                    meta_json_member('client_ip_address', 'classified.client_ip_address'),
                    meta_json_member('client_user_agent', 'classified.client_user_agent'),
                    meta_json_member('fbc', 'classified.fbc_sent'),
                    meta_json_member('fbp', 'classified.fbp'),
                ]
            ) }}
        end as user_data_json,
        -- Meta's Limited Data Use: the US state's number when known (seed us_states), else 0/0
        -- (Meta determines the location).
        case
            when classified.is_limited_data_use
                then
                    '"data_processing_options":["LDU"],"data_processing_options_country":'
                    || case when classified.ldu_state_code is not null then '1' else '0' end
                    || ',"data_processing_options_state":'
                    || coalesce(cast(classified.ldu_state_code as {{ dbt.type_string() }}), '0')
        end as data_processing_members,
        {{ meta_json_object([
            meta_json_member('value', 'classified.value_sent'),
            meta_json_member('currency', 'classified.currency'),
            meta_json_raw_member('content_ids', 'classified.content_ids_json'),
            meta_json_member('content_type', 'classified.content_type'),
            meta_json_raw_member('contents', 'classified.contents_json'),
            meta_json_member('num_items', 'classified.num_items'),
            meta_json_member('order_id', 'classified.order_id_sent'),
            meta_json_member('predicted_ltv', 'classified.predicted_ltv'),
        ]) }} as custom_data_json,
        case
            when classified.is_identity_withheld then 0
            else (
                {%- for f in hashed_fields %}
                    case when classified.{{ f }}_sha256 is not null then 1 else 0 end{% if not loop.last %} +{% endif %}
                {%- endfor %}
            )
        end as hashed_user_data_fields
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
            "case when opt_out then '\"opt_out\":true' end",
            'data_processing_members',
            meta_json_raw_member('user_data', 'user_data_json'),
            meta_json_raw_member('custom_data', 'custom_data_json'),
        ]) }} as payload,
        conversion_type,
        conversion_source,
        dropped_user_data_field_names,
        dropped_custom_data_field_names,
        event_time,
        hashed_user_data_fields,
        dropped_user_data_fields,
        cast(
            case
                when dropped_custom_data_field_names is null then 0
                else
                    length(dropped_custom_data_field_names)
                    - length(replace(dropped_custom_data_field_names, ',', ''))
                    + 1
            end as {{ dbt.type_int() }}
        ) as dropped_custom_data_fields,
        is_eligible,
        conversion_time
    from with_payload
)

select * from final
