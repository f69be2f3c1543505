{#-
    The rules of a model in one query: dbt's not_null and accepted_values for any number of columns, any
    number of boolean SQL expressions, and the model's uniqueness rules (dbt's `unique` for a column, our
    `unique_combination_of_columns` for a list of columns), checked in one test node instead of one per
    rule. A test node costs about the same whatever it checks (dbt's own work per node is most of a small
    build), so a model with a dozen rules costs one node, not a dozen.

    Fails for every row that breaks at least one row rule; the row comes back whole, with `failed_checks`
    naming each rule it breaks ("refund_rate is null; channel = 'tv' is not accepted; not true:
    credit between 0 and 1"). As in dbt's own tests, accepted_values accepts a null (not_null is the
    rule for that) and compares the values as quoted strings; an expression passes only when true
    (false and null fail). The test's `where` config narrows the rows checked, as for any generic test.

    `unique` lists the uniqueness rules, each checked by its own group-by, exactly as the test it replaces:
    a column name is dbt's `unique` (nulls are not compared), a list of columns is
    `unique_combination_of_columns` (nulls compare equal, as in `group by`). Each repeated value fails once,
    as a row whose `failed_checks` names the columns, the value and how many rows hold it (the model's
    columns are null on that row). They read the rows of the test's `where` too, unless `unique_where`
    gives their own (a uniqueness scope is often wider: every row of a key that has a new row); like a
    `where` config, it may be written escaped ({% raw %}…{% endraw %}) and is rendered when the test runs.

    `read_once: true` reads the tested rows once, into a CTE the engine keeps (materialized_cte_hint),
    that the row rules and every uniqueness rule then read: for a view that aggregates many rows into few,
    which every reader would otherwise compute again. Not with `unique_where` (its rows are others).
-#}
{% test row_checks(
    model, not_null=[], accepted_values={}, expressions=[], unique=[], unique_where=none, read_once=false
) %}
    {%- if not (not_null or accepted_values or expressions or unique) -%}
        {{ exceptions.raise_compiler_error('row_checks on ' ~ model ~ ': give at least one of not_null, accepted_values, expressions, unique') }}
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
    {%- endfor -%}
    {%- if read_once and unique_where is not none -%}
        {{ exceptions.raise_compiler_error('row_checks on ' ~ model ~ ': read_once reads the rows of the test once, so unique_where cannot give the uniqueness rules other rows') }}
    {%- endif -%}
    {%- set rows = 'checked_rows' if read_once else model -%}
    {%- set unique_rows = rows if unique_where is none else row_checks_unique_rows(unique_where) -%}
    {%- if read_once %}
    with checked_rows as {{ materialized_cte_hint() }} (
        select * from {{ model }}
    )
    {%- endif %}
    {%- if rules %}
    select
        concat_ws(
            '; ',
            {%- for condition, failure in rules %}
            case when {{ condition }} then {{ failure }} end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as failed_checks,
        *
    from {{ rows }}
    where
        {%- for condition, failure in rules %}
        {{ 'or ' if not loop.first }}{{ condition }}
        {%- endfor %}
    {%- endif %}
    {%- for entry in unique %}
        {%- set columns = [entry] if entry is string else entry -%}
        {%- set value -%}
            {%- for column in columns -%}
            coalesce(cast(repeated.{{ column }} as {{ dbt.type_string() }}), 'null'){{ ", ', ', " if not loop.last }}
            {%- endfor -%}
        {%- endset %}
    {{ 'union all' if rules or not loop.first }}
    select
        concat(
            'not unique: ({{ columns | join(", ") }}) = (', {{ value }}, ') in ',
            cast(repeated.row_count as {{ dbt.type_string() }}), ' rows'
        ) as failed_checks,
        no_row.*
    from (
        select {{ columns | join(', ') }}, count(*) as row_count
        from {{ unique_rows }}
        {%- if entry is string %}
        where {{ entry }} is not null
        {%- endif %}
        group by {{ columns | join(', ') }}
        having count(*) > 1
    ) as repeated
    {#- The model's columns, all null: a repeated value has no one row to show, and the branches of a
        union need the same columns. An empty scan of the model, not a join of its rows. #}
    left join (select * from {{ rows }} where 1 = 0) as no_row on 1 = 0
    {%- endfor %}
{% endtest %}

{#- The rows row_checks' uniqueness rules read when `unique_where` gives their own scope: the tested
    model, seed or source (looked up in dbt's graph: the test's `model` argument already carries the
    test's own `where`), narrowed by `where`, rendered now when it is still Jinja. -#}
{% macro row_checks_unique_rows(where) -%}
    {%- if not execute -%}
        {{- return('(select 1) as not_executed') -}}
    {%- endif -%}
    {%- set tested = model.depends_on.nodes | reject('equalto', none) | list -%}
    {%- set relations = [] -%}
    {%- for unique_id in tested -%}
        {%- set node = graph.nodes.get(unique_id) or graph.sources.get(unique_id) -%}
        {%- if node and node.resource_type in ['model', 'seed', 'snapshot', 'source'] -%}
            {%- do relations.append(node.relation_name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if model.attached_node -%}
        {%- set relations = [graph.nodes[model.attached_node].relation_name] -%}
    {%- endif -%}
    {%- if relations | length != 1 -%}
        {{- exceptions.raise_compiler_error('row_checks unique_where: cannot tell which relation ' ~ model.name ~ ' tests') -}}
    {%- endif -%}
    {%- if '{{' in where or '{%' in where -%}
        {%- set where = render(where) -%}
    {%- endif -%}
    {{- return('(select * from ' ~ relations[0] ~ ' where ' ~ where ~ ') as unique_rows') -}}
{%- endmacro %}
