{#-
    What incremental runs of meta_capi_events need besides the load watermark: the hash of the settings
    its rows are computed with, and the pre-hook that removes the rows of a conversion type whose
    optimization rule was removed.
-#}

{#-
    One-row query of `settings_hash`: the MD5 of vars `meta_default_pixel_id` and `meta_default_consent`,
    the version of the payload's layout (`payload_version`: raised when a release changes what a payload
    holds, so an upgrade recomputes every row) and every row of seed `optimization_rules` (in
    conversion_type order, with its optional limited_data_use column when the file has it). meta_capi_events records it as its fingerprint (audit.incremental_state)
    and recomputes every row when it changes, so editing a rule needs no `--full-refresh`.
-#}
{% macro meta_capi_settings_hash() -%}
    {%- set rule_columns = [
        'conversion_type', 'meta_event_name', 'is_sent', 'min_value_cents', 'value_multiplier',
        'action_source', 'qualifying_sources',
    ] -%}
    {%- set payload_version = 3 -%}
    {%- if execute and 'limited_data_use' in (
        adapter.get_columns_in_relation(ref('optimization_rules')) | map(attribute='name') | map('lower') | list
    ) -%}
        {%- do rule_columns.append('limited_data_use') -%}
    {%- endif -%}
    {%- set measure_parts = [] -%}
    {%- for column in rule_columns -%}
        {%- if not loop.first -%}{%- do measure_parts.append("'|'") -%}{%- endif -%}
        {%- do measure_parts.append(
            "coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '(null)')"
        ) -%}
    {%- endfor -%}
    select
        md5(
            'meta_default_pixel_id={{ var("meta_default_pixel_id") }};'
            || 'meta_default_consent={{ var("meta_default_consent") }};payload_version={{ payload_version }};'
            || coalesce({{ dbt.listagg(
                measure=dbt.concat(measure_parts),
                delimiter_text="';'",
                order_by_clause="order by conversion_type",
            ) }}, '')
        ) as settings_hash
    from {{ ref('optimization_rules') }}
{%- endmacro %}

{#-
    Pre-hook of meta_capi_events' incremental runs: delete the rows of conversion types that no longer
    have an optimization rule. The model's delete+insert replaces only the conversions it recomputes,
    and it never recomputes a conversion without a rule, so without this such rows would stay.
-#}
{% macro delete_meta_capi_events_without_rule(relation) -%}
    {{ return(adapter.dispatch('delete_meta_capi_events_without_rule')(relation)) }}
{%- endmacro %}

{#- A DELETE statement; Spark's Parquet tables have none (spark__ version in macros/engines/spark.sql). -#}
{% macro default__delete_meta_capi_events_without_rule(relation) -%}
    delete from {{ relation }}
    where conversion_type not in (
        select rules.conversion_type
        from {{ ref('optimization_rules') }} as rules
    )
{%- endmacro %}
