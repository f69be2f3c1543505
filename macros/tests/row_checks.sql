{#-
    The row-level rules of a model in one query: dbt's not_null and accepted_values for any number of
    columns, and any number of boolean SQL expressions, checked in a single scan instead of one query
    per rule. A test node costs about the same whatever it checks, so a model with a dozen such rules
    costs one node, not a dozen.

    Fails for every row that breaks at least one rule; the row comes back whole, with `failed_checks`
    naming each rule it breaks ("refund_rate is null; channel = 'tv' is not accepted; not true:
    credit between 0 and 1"). As in dbt's own tests, accepted_values accepts a null (not_null is the
    rule for that) and compares the values as quoted strings; an expression passes only when true
    (false and null fail). The test's `where` config narrows the rows checked, as for any generic test.
-#}
{% test row_checks(model, not_null=[], accepted_values={}, expressions=[]) %}
    {%- if not (not_null or accepted_values or expressions) -%}
        {{ exceptions.raise_compiler_error('row_checks on ' ~ model ~ ': give at least one of not_null, accepted_values, expressions') }}
    {%- endif -%}
    {#- (condition a row fails, SQL string naming the failure) for every rule -#}
    {%- set rules = [] -%}
    {%- for column in not_null -%}
        {%- do rules.append((column ~ ' is null', "'" ~ column ~ " is null'")) -%}
    {%- endfor -%}
    {%- for column, values in accepted_values.items() -%}
        {%- set accepted -%}
            ({% for value in values %}'{{ value }}'{{ ', ' if not loop.last }}{% endfor %})
        {%- endset -%}
        {%- do rules.append((
            column ~ ' not in ' ~ accepted,
            "concat('" ~ column ~ " = ''', cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), ''' is not accepted')",
        )) -%}
    {%- endfor -%}
    {%- for expression in expressions -%}
        {%- do rules.append((
            'not coalesce((' ~ expression ~ '), false)',
            "'not true: " ~ (expression | replace("'", "''")) ~ "'",
        )) -%}
    {%- endfor %}
    select
        concat_ws(
            '; ',
            {%- for condition, failure in rules %}
            case when {{ condition }} then {{ failure }} end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as failed_checks,
        *
    from {{ model }}
    where
        {%- for condition, failure in rules %}
        {{ 'or ' if not loop.first }}{{ condition }}
        {%- endfor %}
{% endtest %}
