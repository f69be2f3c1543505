{#-
    The incremental state of person_conversion_summary and the persons it must recompute.

    The summary reads conversion_event and conversion_funnel. conversion_event stamps each conversion
    with the latest load of its copies (`last_loaded_at`); conversion_funnel is as up to date as the
    `loaded_through` it recorded, and a person's funnel rows change only when their matching does
    (int_funnel_steps_matched.person_loaded_at). The summary's `loaded_through` is the earlier of the
    two; its fingerprint is conversion_funnel's (a funnel definition change recomputes it whole) with
    var `reporting_currency` (a column of every row).
-#}

{% macro person_summary_loaded_through() -%}
    (
        select
            case
                when inputs.funnels_through is null or inputs.conversions_through is null then null
                when inputs.funnels_through < inputs.conversions_through then inputs.funnels_through
                else inputs.conversions_through
            end
        from (
            select
                {{ incremental_state_value('loaded_through', ref('conversion_funnel').identifier) }} as funnels_through,
                (
                    select max(conversions.last_loaded_at)
                    from {{ ref('conversion_event') }} as conversions
                ) as conversions_through
        ) as inputs
    )
{%- endmacro %}

{% macro person_summary_fingerprint() -%}
    md5(
        {{ incremental_state_value('fingerprint', ref('conversion_funnel').identifier) }}
        || '|' || '{{ var("reporting_currency", "USD") }}'
    )
{%- endmacro %}

{#-
    Pre-hook condition over the summary's rows: true for the persons whose row may have changed since
    the last run, and for every row (`1 = 1`) when the state is not current, read when the hook runs
    (incremental_state_is_current_now). A person may have changed when
      * a conversion changed since (conversion_event.last_loaded_at after `loaded_through`) and
        any copy of it (int_conversion_identities) names the person: the conversion is theirs now, or
        was before a copy of another person became the one kept;
      * their funnel matching changed since (int_funnel_steps_matched.person_loaded_at).
-#}
{% macro person_summary_outdated_persons() -%}
    {%- if not incremental_state_is_current_now(person_summary_fingerprint()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    person_id in (
        select copies.person_id
        from {{ ref('int_conversion_identities') }} as copies
        where copies.conversion_key in (
            select conversions.conversion_key
            from {{ ref('conversion_event') }} as conversions
            where conversions.last_loaded_at > {{ incremental_state_value('loaded_through') }}
        )

        union

        select matched_rows.person_id
        from {{ ref('int_funnel_steps_matched') }} as matched_rows
        where matched_rows.person_loaded_at > {{ incremental_state_value('loaded_through') }}
    )
{%- endmacro %}
