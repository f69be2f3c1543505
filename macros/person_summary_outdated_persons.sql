{#-
    The incremental state of person_conversion_summary and the persons it must recompute.

    The summary reads conversion_event and conversion_funnel, and keeps a watermark for each:
    `conversion_event`, the latest load of the conversions it read (conversion_event stamps each
    conversion with the latest load of its copies, `last_loaded_at`), and `conversion_funnel`, the
    `loaded_through` conversion_funnel recorded (a person's funnel rows change only when their matching
    does, int_funnel_steps_matched.person_loaded_at). Conversions and events land in separate loads, so
    the two differ: comparing each input with its own watermark keeps a run from recomputing the persons
    of the other input's later load again. Its `loaded_through`, the earlier of the two, bounds the
    relinks it has seen (stitched_away_persons). Its fingerprint is conversion_funnel's (a funnel
    definition change recomputes it whole) with var `reporting_currency` (a column of every row).
-#}

{% macro person_summary_funnels_through() -%}
    {{ incremental_state_value('loaded_through', ref('conversion_funnel').identifier) }}
{%- endmacro %}

{% macro person_summary_conversions_through() -%}
    (
        select max(conversions.last_loaded_at)
        from {{ ref('conversion_event') }} as conversions
    )
{%- endmacro %}

{#- The watermarks the post-hook records besides `loaded_through`: name -> SQL expression. -#}
{% macro person_summary_watermarks() -%}
    {{ return({
        'conversion_event': person_summary_conversions_through(),
        'conversion_funnel': person_summary_funnels_through(),
    }) }}
{%- endmacro %}

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
                {{ person_summary_funnels_through() }} as funnels_through,
                {{ person_summary_conversions_through() }} as conversions_through
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
      * a conversion changed since (conversion_event.last_loaded_at after watermark `conversion_event`)
        and any copy of it (int_conversion_identities) names the person: the conversion is theirs now,
        or was before a copy of another person became the one kept;
      * their funnel matching changed since (int_funnel_steps_matched.person_loaded_at after watermark
        `conversion_funnel`).
    A state recorded before the summary kept the two (only `loaded_through`) stands in for both.
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
            where conversions.last_loaded_at > coalesce(
                {{ incremental_state_value('loaded_through', watermark='conversion_event') }},
                {{ incremental_state_value('loaded_through') }}
            )
        )

        union

        select matched_rows.person_id
        from {{ ref('int_funnel_steps_matched') }} as matched_rows
        where matched_rows.person_loaded_at > coalesce(
            {{ incremental_state_value('loaded_through', watermark='conversion_funnel') }},
            {{ incremental_state_value('loaded_through') }}
        )
    )
{%- endmacro %}
