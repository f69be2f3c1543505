{#-
    on-run-end hook (dbt_project.yml): appends one row per dbt invocation (build, run, seed, test, …) to
    `audit.dbt_build_log` in the warehouse itself, so anything reading the marts (`convopt report`'s
    manifest.json) can name the build it read, whatever target folder dbt wrote its artifacts to.
    The vars that shape the marts' numbers (reporting time zone and currency) are recorded with it.
    Node counts come from the run's results: `failed_nodes` counts error, fail and runtime-error results.

    `tested_loads_before` is the invocation's start when it was a `dbt build` of every model and data
    test of the project (those tagged `proves_sql` aside: they check macros on constants, not rows, and the
    `scheduled` selector leaves them out; not `--empty` or `--sample`) that ended without a failed or
    skipped node: every
    row loaded before it has then passed the data tests (or only warned), and test_scope
    (macros/test_scope.sql) checks only rows loaded since. Null on every other invocation. A warning
    does not hold it back: a warn-severity test flags rows that are kept on purpose (a conversion
    without an exchange rate, listed in rpt_unvalued_conversions), which would otherwise keep every
    later build checking every row.
-#}
{% macro record_build(results) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set counts = namespace(ok=0, failed=0, skipped=0, warned=0) -%}
    {%- set ran = [] -%}
    {%- for result in results -%}
        {%- do ran.append(result.node.unique_id) -%}
        {%- set status = result.status | string | lower -%}
        {%- if status in ('error', 'fail', 'runtime error') -%}
            {%- set counts.failed = counts.failed + 1 -%}
        {%- elif status == 'skipped' -%}
            {%- set counts.skipped = counts.skipped + 1 -%}
        {%- elif status == 'warn' -%}
            {%- set counts.warned = counts.warned + 1 -%}
        {%- else -%}
            {%- set counts.ok = counts.ok + 1 -%}
        {%- endif -%}
    {%- endfor -%}
    {#- Every model and data test of the project must have run (an ephemeral model never does; a test
        tagged proves_sql reads no rows). -#}
    {%- set not_run = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type in ('model', 'test') and node.config.materialized != 'ephemeral'
            and 'proves_sql' not in node.tags and node.unique_id not in ran -%}
            {%- do not_run.append(node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set tested_everything = flags.WHICH == 'build' and not not_run and not flags.EMPTY and not flags.SAMPLE
        and counts.failed == 0 and counts.skipped == 0 -%}
    {%- set started_at = run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") -%}
    {%- set insert_row -%}
    insert into audit.dbt_build_log (
        invocation_id, command, dbt_version, target_name, run_started_at, finished_at, reporting_timezone,
        reporting_currency, ok_nodes, warned_nodes, failed_nodes, skipped_nodes, tested_loads_before
    )
    values (
        '{{ invocation_id }}',
        '{{ flags.WHICH }}',
        '{{ dbt_version }}',
        '{{ target.name }}',
        cast('{{ started_at }}' as {{ dbt.type_timestamp() }}),
        cast('{{ modules.datetime.datetime.now(modules.pytz.utc).strftime("%Y-%m-%d %H:%M:%S.%f") }}'
            as {{ dbt.type_timestamp() }}),
        '{{ var("reporting_timezone", "UTC") }}',
        '{{ var("reporting_currency", "USD") }}',
        {{ counts.ok }},
        {{ counts.warned }},
        {{ counts.failed }},
        {{ counts.skipped }},
        {% if tested_everything %}cast('{{ started_at }}' as {{ dbt.type_timestamp() }}){% else %}null{% endif %}
    )
    {%- endset -%}
    {#- The on-run-start hook (prepare_build_log) has made sure the log and its columns exist. -#}
    {{ insert_row }}
{%- endmacro %}

{#-
    on-run-start hook (dbt_project.yml): makes sure `audit.dbt_build_log` exists with every column before
    any node runs, so a data test's scope (macros/test_scope.sql) can read it from the first build on.
-#}
{% macro prepare_build_log() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {{ hook_statements(build_log_ddl()) }}
{%- endmacro %}

{#- The statements that create the log, or add `tested_loads_before` to a log written before it existed;
    each one changes nothing when the log is already as it should be. -#}
{% macro build_log_ddl() -%}
    {{ return(adapter.dispatch('build_log_ddl')()) }}
{%- endmacro %}

{% macro build_log_create_table() -%}
    create table if not exists audit.dbt_build_log (
        invocation_id {{ dbt.type_string() }},
        command {{ dbt.type_string() }},
        dbt_version {{ dbt.type_string() }},
        target_name {{ dbt.type_string() }},
        run_started_at {{ dbt.type_timestamp() }},
        finished_at {{ dbt.type_timestamp() }},
        reporting_timezone {{ dbt.type_string() }},
        reporting_currency {{ dbt.type_string() }},
        ok_nodes {{ dbt.type_int() }},
        warned_nodes {{ dbt.type_int() }},
        failed_nodes {{ dbt.type_int() }},
        skipped_nodes {{ dbt.type_int() }},
        tested_loads_before {{ dbt.type_timestamp() }}
    )
{%- endmacro %}

{% macro default__build_log_ddl() -%}
    {{ return([
        'create schema if not exists audit',
        build_log_create_table(),
        'alter table audit.dbt_build_log add column if not exists tested_loads_before ' ~ dbt.type_timestamp(),
    ]) }}
{%- endmacro %}

{#- Spark has no `add column if not exists`: the catalog says whether the column is there. -#}
{% macro spark__build_log_ddl() -%}
    {%- do run_query('create schema if not exists audit') -%}
    {%- do run_query(build_log_create_table()) -%}
    {%- set log = api.Relation.create(schema='audit', identifier='dbt_build_log') -%}
    {%- set names = adapter.get_columns_in_relation(log) | map(attribute='name') | map('lower') | list -%}
    {%- if 'tested_loads_before' in names -%}
        {{ return(['select 1']) }}
    {%- endif -%}
    {{ return(['alter table audit.dbt_build_log add columns (tested_loads_before timestamp)']) }}
{%- endmacro %}
