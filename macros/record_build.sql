{#-
    on-run-end hook (dbt_project.yml): appends one row per dbt invocation (build, run, seed, test, …) to
    `audit.dbt_build_log` in the warehouse itself, so anything reading the marts (`convopt report`'s
    manifest.json) can name the build it read, whatever target folder dbt wrote its artifacts to.
    The vars that shape the marts' numbers (reporting time zone and currency) are recorded with it.
    Node counts come from the run's results: `failed_nodes` counts error, fail and runtime-error results.
-#}
{% macro record_build(results) -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set counts = namespace(ok=0, failed=0, skipped=0, warned=0) -%}
    {%- for result in results -%}
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
    {%- set create_schema -%}
        create schema if not exists audit
    {%- endset -%}
    {%- set create_table -%}
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
        skipped_nodes {{ dbt.type_int() }}
    )
    {%- endset -%}
    {%- set insert_row -%}
    insert into audit.dbt_build_log values (
        '{{ invocation_id }}',
        '{{ flags.WHICH }}',
        '{{ dbt_version }}',
        '{{ target.name }}',
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }}),
        cast('{{ modules.datetime.datetime.now(modules.pytz.utc).strftime("%Y-%m-%d %H:%M:%S.%f") }}'
            as {{ dbt.type_timestamp() }}),
        '{{ var("reporting_timezone", "UTC") }}',
        '{{ var("reporting_currency", "USD") }}',
        {{ counts.ok }},
        {{ counts.warned }},
        {{ counts.failed }},
        {{ counts.skipped }}
    )
    {%- endset -%}
    {{ hook_statements([create_schema, create_table, insert_row]) }}
{%- endmacro %}
