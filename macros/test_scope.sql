{#-
    Which rows a data test checks (docs/warehouse.md, "Which rows a data test checks").

    A scheduled `dbt build` writes only what changed since the previous run, but a data test reads its
    whole model: without a scope, the tests of an incremental run cost what the whole history costs.
    `test_scope` is the `where` of such a test: on an incremental build it keeps the rows whose load
    watermark (`_loaded_at`, `last_loaded_at`, …) is at or after the start of the previous build that
    tested every row, and on everything else it keeps every row.

    Every row: `dbt build --full-refresh`, var `full_tests` (`convopt run --full-tests`), a first build
    (no earlier build has passed), any command other than `build` (`dbt test` on its own checks
    everything: it does not know what was written since), and a build whose reporting time zone or
    currency differs from every passing build's (the marts' money and periods were recomputed).

    `key` widens the rows to every row of each key value that has such a row: for a unique test (a new
    row is compared with the old rows of its key) and for a model that rewrites every row of a key at
    once while only some of them get a new watermark. `relation` and `relation_key` look the watermark
    up in another model, for a mart whose columns hold none (the keys a model upstream rewrote).

    The start comes from `audit.dbt_build_log` (macros/record_build.sql): `tested_loads_before` is set
    only on a `dbt build` that selected every model and data test of the project and finished without
    a failure, warning or skipped node. A failed build, a partial one (`--select`), `dbt run`,
    `dbt test` or `dbt ls` leaves it null, so it never moves past rows that were not tested. Rows loaded
    while that build ran are after its start, so the next build tests them again.

    dbt renders a test's YAML config when it parses the project, where the project's macros are not
    available. A `where` that calls this macro is therefore written escaped,
    `where: "{% raw %}{{ test_scope('_loaded_at') }}{% endraw %}"`, and get_where_subquery below
    renders it when the test runs, with flags and vars of this invocation. What it returns is plain
    SQL (a scalar subquery on the build log), the same on every engine but for the time-zone spelling.
-#}
{% macro test_scope(columns, key=none, relation=none, relation_key=none) -%}
    {%- set columns = [columns] if columns is string else columns -%}
    {%- set full_tests = var('full_tests', false) | string | lower in ['true', '1', 'yes'] -%}
    {%- if not execute or flags.WHICH != 'build' or flags.FULL_REFRESH or full_tests -%}
        {{- return('1 = 1') -}}
    {%- endif -%}
    {%- set start = test_scope_start() -%}
    {#- A null first column (the load watermark, never null in a sound row) is always checked, so a
        not_null test of that column keeps its meaning; later columns (e.g. optimized_at) are null on
        rows without that kind of change. -#}
    {%- set touched -%}
        ({{ columns[0] }} is null
        {%- for column in columns %} or {{ column }} >= {{ start }}{% endfor -%})
    {%- endset -%}
    {%- if key is none -%}
        {{- return(touched) -}}
    {%- endif -%}
    {#- The table holding the watermark: the tested model, another model named by its name (no ref(),
        which a test may only call for the models it depends on), or a relation. -#}
    {%- if relation is none -%}
        {%- set relation = graph.nodes[model.attached_node].relation_name -%}
    {%- elif relation is string and '.' not in relation -%}
        {%- set named = graph.nodes.values() | selectattr('resource_type', 'in', ['model', 'seed'])
            | selectattr('name', 'equalto', relation) | list -%}
        {%- if named | length != 1 -%}
            {{- exceptions.raise_compiler_error('test_scope: no model named ' ~ relation) -}}
        {%- endif -%}
        {%- set relation = named[0].relation_name -%}
    {%- endif -%}
    {%- set touched_keys -%}
        select {{ relation_key or key }} from {{ relation }} where {{ touched }}
    {%- endset -%}
    {{- return('(' ~ key ~ ' is null or ' ~ key ~ ' in (' ~ touched_keys ~ '))') -}}
{%- endmacro %}

{#- The start of the latest build that tested every row, as an instant; 1970 when there is none. -#}
{% macro test_scope_start() -%}
    {{ return(adapter.dispatch('test_scope_start')()) }}
{%- endmacro %}

{#- The log holds UTC wall-clock times (timestamp without zone): `at time zone 'UTC'` makes the
    instant on DuckDB and PostgreSQL whatever the session's time zone. -#}
{% macro default__test_scope_start() -%}
    (
        select (
            coalesce(max(tested_builds.tested_loads_before), cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}))
            at time zone 'UTC'
        )
        from audit.dbt_build_log as tested_builds
        where
            tested_builds.reporting_timezone = '{{ var("reporting_timezone", "UTC") }}'
            and tested_builds.reporting_currency = '{{ var("reporting_currency", "USD") }}'
    )
{%- endmacro %}

{#- Spark's timestamp is an instant, read in the session time zone, which both Spark targets pin to UTC. -#}
{% macro spark__test_scope_start() -%}
    (
        select coalesce(max(tested_builds.tested_loads_before), cast('1970-01-01 00:00:00' as timestamp))
        from audit.dbt_build_log as tested_builds
        where
            tested_builds.reporting_timezone = '{{ var("reporting_timezone", "UTC") }}'
            and tested_builds.reporting_currency = '{{ var("reporting_currency", "USD") }}'
    )
{%- endmacro %}

{#-
    dbt's get_where_subquery (the rows a generic test reads, narrowed by its `where` config), with one
    addition: a `where` that still holds Jinja after parsing (written inside {% raw %}) is rendered
    now, when the test runs, so it can call the project's macros (test_scope).
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and ('{{' in where or '{%' in where) -%}
        {%- set where = render(where) -%}
    {%- endif -%}
    {%- if where -%}
        {{- return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -}}
    {%- endif -%}
    {{- return(relation) -}}
{%- endmacro %}
