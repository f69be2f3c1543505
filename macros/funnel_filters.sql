{#-
    Property filters of funnel steps and exclusion steps (the `step_filter` column of the funnel
    definitions, `exclusion_filter` of the exclusions). A filter is one to five conditions joined by
    ` and `; a condition is `key operator value`, separated by single spaces:

        properties.path = /checkout
        value_cents > 0 and country = US

    * key: an event column of funnel_filter_columns() (case ignored), or `properties.<name>` for a key
      of the event's `properties` JSON (name: letters, digits, `_`, `$`, `-`; case kept);
    * operator: = != < <= > >=;
    * value: the rest of the condition, as written (no quotes needed; it may hold spaces but not
      ` and `). < <= > >= need a number; = and != compare as numbers when both sides are numbers,
      otherwise as text. A missing value (null column, absent key) fails every condition but !=.

    The filter text never becomes SQL: it is split into parts held as data (funnel_filter_clauses),
    checked, and compared with each event's values by a fixed expression (funnel_filter_passes).
-#}

{#- The event columns a filter may name (all of int_funnel_events, as text). -#}
{% macro funnel_filter_columns() -%}
    {{ return([
        'event_source', 'campaign_id', 'ad_set_id', 'ad_id',
        'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term',
        'device_type', 'browser', 'os', 'country', 'city', 'event_source_url', 'value_cents',
    ]) }}
{%- endmacro %}

{#- Part `part_number` of the text split on `delimiter_text`; '' when there are fewer parts (dbt-duckdb's split_part gives null). -#}
{% macro funnel_filter_part(string_text, delimiter_text, part_number) -%}
    coalesce({{ dbt.split_part(string_text, delimiter_text, part_number) }}, '')
{%- endmacro %}

{#- A number as written in a filter or an event value: optional minus, digits, optional decimals. -#}
{% macro funnel_filter_number(text_expression) -%}
    cast(
        case when {{ regexp_full_match(text_expression, '-?[0-9]+([.][0-9]+)?') }} then {{ text_expression }} end
        as {{ dbt.type_numeric() }}
    )
{%- endmacro %}

{#-
    One row per filter text and condition: filter_text (as given by `filters_sql`, a query with one
    column `filter_text`), clause_number, clause_text, filter_key (an event column, or 'properties'),
    property_key (the JSON key for 'properties'), filter_operator, filter_value, filter_number (the
    value as a number, or null) and problem (null when the condition is valid). A filter with more
    than five conditions gets a row with the problem.
-#}
{% macro funnel_filter_clauses(filters_sql, max_clauses=5) -%}
    {%- set known_columns = "'" ~ (funnel_filter_columns() | join("', '")) ~ "'" -%}
    select
        parts.filter_text,
        parts.clause_number,
        parts.clause_text,
        parts.filter_key,
        parts.property_key,
        parts.filter_operator,
        parts.filter_value,
        {{ funnel_filter_number('parts.filter_value') }} as filter_number,
        case
            when parts.clause_number > {{ max_clauses }}
                then 'more than {{ max_clauses }} conditions'
            when parts.clause_text = ''
                then 'an empty condition (two ''and'' in a row, or one at an end)'
            when parts.filter_key = '' or parts.filter_operator = '' or parts.filter_value = ''
                then 'condition ''' || parts.clause_text
                    || ''' is not `key operator value` (separated by single spaces)'
            when parts.filter_operator not in ('=', '!=', '<', '<=', '>', '>=')
                then 'condition ''' || parts.clause_text
                    || ''': operator ''' || parts.filter_operator || ''' is not one of = != < <= > >='
            when parts.filter_key = 'properties' and not {{ regexp_full_match('parts.property_key', '[A-Za-z0-9_$-]+') }}
                then 'condition ''' || parts.clause_text
                    || ''': a properties key is written properties.<name> (letters, digits, _ $ -)'
            when parts.filter_key <> 'properties' and parts.filter_key not in ({{ known_columns }})
                then 'condition ''' || parts.clause_text || ''': unknown key ''' || parts.filter_key
                    || ''' (use properties.<name> or one of {{ funnel_filter_columns() | join(", ") }})'
            when parts.filter_operator in ('<', '<=', '>', '>=') and {{ funnel_filter_number('parts.filter_value') }} is null
                then 'condition ''' || parts.clause_text
                    || ''': ' || parts.filter_operator || ' needs a number, not ''' || parts.filter_value || ''''
            when {{ dbt.position("' and '", "lower(parts.filter_value) || ' '") }} > 0
                then 'condition ''' || parts.clause_text
                    || ''': join conditions with a lower-case '' and '''
        end as problem
    from (
        select
            clauses.filter_text,
            clauses.clause_number,
            clauses.clause_text,
            case
                when lower({{ funnel_filter_part('clauses.clause_text', "' '", 1) }}) like 'properties.%'
                    then 'properties'
                else lower({{ funnel_filter_part('clauses.clause_text', "' '", 1) }})
            end as filter_key,
            case
                when lower({{ funnel_filter_part('clauses.clause_text', "' '", 1) }}) like 'properties.%'
                    then substr({{ funnel_filter_part('clauses.clause_text', "' '", 1) }}, 12)
            end as property_key,
            {{ funnel_filter_part('clauses.clause_text', "' '", 2) }} as filter_operator,
            trim(substr(
                clauses.clause_text,
                {{ dbt.length(funnel_filter_part('clauses.clause_text', "' '", 1)) }}
                + {{ dbt.length(funnel_filter_part('clauses.clause_text', "' '", 2)) }} + 3
            )) as filter_value
        from (
            {%- for clause_number in range(1, max_clauses + 2) %}
                select
                    filters.filter_text,
                    {{ clause_number }} as clause_number,
                    {{ funnel_filter_part('filters.filter_text', "' and '", clause_number) }} as clause_text
                from ({{ filters_sql }}) as filters
                where filters.filter_text is not null
                {%- if clause_number > 1 %}
                    -- Only the conditions that exist (the text has at least this many parts).
                    and {{ dbt.length('filters.filter_text') }}
                    - {{ dbt.length(dbt.replace('filters.filter_text', "' and '", "''")) }}
                    >= {{ (clause_number - 1) * 5 }}
                {%- endif %}
                {% if not loop.last %}union all{% endif %}
            {%- endfor %}
        ) as clauses
    ) as parts
{%- endmacro %}

{#-
    The event's value for a condition, as text: the named event column, or the `properties` key.
    `clause` and `event` are relation aliases (a row of funnel_filter_clauses, an int_funnel_events row).
-#}
{% macro funnel_filter_event_value(clause, event) -%}
    case {{ clause }}.filter_key
        {%- for column_name in funnel_filter_columns() %}
            when '{{ column_name }}' then cast({{ event }}.{{ column_name }} as {{ dbt.type_string() }})
        {%- endfor %}
        when 'properties' then {{ json_text_at_key(event ~ '.properties', clause ~ '.property_key') }}
    end
{%- endmacro %}

{#- True when the event value `value` (text) passes the condition `clause` (a funnel_filter_clauses row). -#}
{% macro funnel_filter_passes(clause, value) -%}
    case
        when {{ value }} is null then {{ clause }}.filter_operator = '!='
        when {{ clause }}.filter_number is not null and {{ funnel_filter_number(value) }} is not null
            then case {{ clause }}.filter_operator
                when '=' then {{ funnel_filter_number(value) }} = {{ clause }}.filter_number
                when '!=' then {{ funnel_filter_number(value) }} <> {{ clause }}.filter_number
                when '<' then {{ funnel_filter_number(value) }} < {{ clause }}.filter_number
                when '<=' then {{ funnel_filter_number(value) }} <= {{ clause }}.filter_number
                when '>' then {{ funnel_filter_number(value) }} > {{ clause }}.filter_number
                when '>=' then {{ funnel_filter_number(value) }} >= {{ clause }}.filter_number
            end
        when {{ clause }}.filter_operator = '=' then {{ value }} = {{ clause }}.filter_value
        when {{ clause }}.filter_operator = '!=' then {{ value }} <> {{ clause }}.filter_value
        else false
    end
{%- endmacro %}
