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
    up in another model, for a mart whose columns hold none (the keys a model upstream rewrote);
    `relation_group` widens that model's recent rows to every row of their group first (every conversion
    of a conversion_key with a copy loaded since: a late copy gives them all new ids).

    The start comes from `audit.dbt_build_log` (macros/record_build.sql): `tested_loads_before` is set
    only on a `dbt build` that selected every model and data test of the project and finished without
    a failure, warning or skipped node. A failed build, a partial one (`--select`), `dbt run`,
    `dbt test` or `dbt ls` leaves it null, so it never moves past rows that were not tested. Rows loaded
    while that build ran are after its start, so the next build tests them again.

    dbt renders a test's YAML config when it parses the project, where the project's macros are not
    available. A `where` that calls this macro is therefore written escaped,
    `where: "{% raw %}{{ test_scope('_loaded_at') }}{% endraw %}"`, and get_where_subquery below
    renders it when the test runs, with flags and vars of this invocation. What it returns is plain
    SQL comparing with a literal instant read from the build log as the test runs
    (`test_scope_start`), the same on every engine but for the time-zone spelling.
-#}
{% macro test_scope(columns, key=none, relation=none, relation_key=none, relation_group=none) -%}
    {%- set start_text = test_scope_start_text() -%}
    {%- if test_scope_checks_every_row(start_text) -%}
        {{- return('1 = 1') -}}
    {%- endif -%}
    {%- set start = adapter.dispatch('test_scope_instant')(start_text) -%}
    {%- if key is none -%}
        {{- return(test_scope_touched(columns, start)) -}}
    {%- endif -%}
    {{- return(test_scope_keys_in(key, test_scope_query(columns, key, relation, relation_key, relation_group, start))) -}}
{%- endmacro %}

{#- The rows whose first of `columns` is null or any of them at or after the start of the last tested build
    (`start`: that instant as SQL, when the caller has read it already). -#}
{% macro test_scope_touched(columns, start=none) -%}
    {%- set columns = [columns] if columns is string else columns -%}
    {%- set start = test_scope_start() if start is none else start -%}
    {#- A null first column (the load watermark, never null in a sound row) is always checked, so a
        not_null test of that column keeps its meaning; later columns (e.g. optimized_at) are null on
        rows without that kind of change. -#}
    {%- set touched -%}
        ({{ columns[0] }} is null
        {%- for column in columns %} or {{ column }} >= {{ start }}{% endfor -%})
    {%- endset -%}
    {{- return(touched) -}}
{%- endmacro %}

{#- The query of the keys test_scope keeps (its arguments are test_scope's), for test_scope_keys: a test
    scoped by several watermarks passes it a list of such queries, so the keys are one `in` (see there). -#}
{% macro test_scope_query(columns, key, relation=none, relation_key=none, relation_group=none, start=none) -%}
    {%- set touched = test_scope_touched(columns, start) -%}
    {#- The table holding the watermark: the tested model, another model named by its name (no ref(),
        which a test may only call for the models it depends on), or a relation. -#}
    {%- if relation is none -%}
        {%- set relation = test_scope_tested_relation() -%}
    {%- elif relation is string and '.' not in relation -%}
        {%- set relation = test_scope_relation(relation) -%}
    {%- endif -%}
    {%- if relation_group is none -%}
        {%- set touched_keys -%}
            select {{ relation_key or key }} from {{ relation }} where {{ touched }}
        {%- endset -%}
    {%- else -%}
        {%- set touched_keys -%}
            select {{ relation_key or key }} from {{ relation }} where {{ relation_group }} in (
                select {{ relation_group }} from {{ relation }} where {{ touched }}
            )
        {%- endset -%}
    {%- endif -%}
    {{- return(touched_keys) -}}
{%- endmacro %}

{#- The relation of the model the running data test tests. -#}
{% macro test_scope_tested_relation() -%}
    {{- return(graph.nodes[model.attached_node].relation_name) -}}
{%- endmacro %}

{#- The relation of a model or seed named `name`, looked up in dbt's graph: a test may call ref() only for
    the models it depends on, and a scope reads others. At parse time, when the graph is not there yet,
    the name itself (the SQL is not run then). -#}
{% macro test_scope_relation(name) -%}
    {%- if not execute -%}
        {{- return(name) -}}
    {%- endif -%}
    {%- set named = graph.nodes.values() | selectattr('resource_type', 'in', ['model', 'seed'])
        | selectattr('name', 'equalto', name) | list -%}
    {%- if named | length != 1 -%}
        {{- exceptions.raise_compiler_error('test_scope: no model named ' ~ name) -}}
    {%- endif -%}
    {{- return(named[0].relation_name) -}}
{%- endmacro %}

{#- Whether a data test is scoped: an incremental `dbt build` without var full_tests. -#}
{% macro test_scope_is_scoped() -%}
    {%- set full_tests = var('full_tests', false) | string | lower in ['true', '1', 'yes'] -%}
    {{- return(execute and flags.WHICH == 'build' and not flags.FULL_REFRESH and not full_tests) -}}
{%- endmacro %}

{#- Whether a test checks every row, given test_scope_start_text(): unscoped (none), or a scoped build with
    no earlier tested build (the start is 1970). Such a test gets `1 = 1`, not a filter that keeps every
    row: on a first build at 10M events the filters by key read millions of keys to keep them all. -#}
{% macro test_scope_checks_every_row(start_text) -%}
    {{- return(start_text is none or start_text.startswith('1970-01-01 00:00:00')) -}}
{%- endmacro %}

{#- The rows whose `key` is among the keys `query` returns (or null), on a scoped build; every row
    otherwise. The general form of test_scope's `key`, for keys a query computes (the periods of a
    mart, from the instants of the inputs loaded since `test_scope_start()`). `query` can be a list of
    queries: the rows whose key any of them returns (a test scoped by several watermarks or conditions).
    Written as one `in` on the key as text, a null key as '' (so a null key is always among them), and
    not as `key is null or key in (…)`: PostgreSQL cannot turn an `in` under an `or` into a join and
    then compares every row with the keys one by one (hours for a first build of 10M events). A text
    key that is '' is then always checked too, which only widens the scope. -#}
{% macro test_scope_keys(key, query) -%}
    {%- if test_scope_checks_every_row(test_scope_start_text()) -%}
        {{- return('1 = 1') -}}
    {%- endif -%}
    {{- return(test_scope_keys_in(key, query)) -}}
{%- endmacro %}

{#- test_scope_keys once the caller knows the test is scoped to some rows. -#}
{% macro test_scope_keys_in(key, query) -%}
    {%- set queries = [query] if query is string else query -%}
    {%- set as_text = 'coalesce(cast({} as ' ~ dbt.type_string() ~ "), '')" -%}
    {%- set parts = [] -%}
    {%- for one_query in queries -%}
        {%- do parts.append(
            'select ' ~ as_text.format('scoped_keys.scoped_key') ~ ' from (' ~ one_query ~ ') as scoped_keys (scoped_key)'
        ) -%}
    {%- endfor -%}
    {{- return(as_text.format(key) ~ ' in (' ~ parts | join(' union all ') ~ " union all select '')") -}}
{%- endmacro %}

{#- test_scope_keys for a `period_date` key with the periods fetched when the test runs and written into its
    `where` as date literals: a filter of constants on a view's grouping column can be applied below its
    aggregation, where a subquery cannot (rpt_attribution_by_campaign sums its attribution rows by day first:
    the dates drop the periods after that sum, before the weeks and months are added up and before the
    test reads them). `query` returns `period_date`. -#}
{% macro test_scope_period_dates(query) -%}
    {%- if test_scope_checks_every_row(test_scope_start_text()) -%}
        {{- return('1 = 1') -}}
    {%- endif -%}
    {%- set found = run_query(
        'select distinct cast(scoped.period_date as ' ~ dbt.type_string() ~ ') from (' ~ query ~ ') as scoped'
        ~ ' where scoped.period_date is not null'
    ) -%}
    {%- set dates = [] -%}
    {%- for row in found.rows -%}
        {%- do dates.append("cast('" ~ row[0] ~ "' as date)") -%}
    {%- endfor -%}
    {#- No period in scope: no row, and a constant false lets the engine skip computing the view at all (at
        10M events it summed every attribution row, 5 s of a build with nothing new, to keep none). A row of
        null period_date would come from a row of the summed mart without a time, which that mart's own
        scoped not_null test checks when the row is written. -#}
    {%- if not dates -%}
        {{- return('1 = 0') -}}
    {%- endif -%}
    {{- return('(period_date is null or period_date in (' ~ dates | join(', ') ~ '))') -}}
{%- endmacro %}

{#- `condition` on a scoped build, every row otherwise: rows a mart rewrites for a reason no watermark
    shows (conversion_funnel's open attempts, meta_capi_events' status at a new reference time). With a
    `key`, the query of the keys of the tested model's rows that meet it, for test_scope_keys (a test also
    scoped by a watermark: one `in` over both, not an `or`). -#}
{% macro test_scope_rows(condition, key=none) -%}
    {%- if key is not none -%}
        {{- return('select ' ~ key ~ ' from ' ~ test_scope_tested_relation() ~ ' where ' ~ condition) -}}
    {%- endif -%}
    {%- if test_scope_checks_every_row(test_scope_start_text()) -%}
        {{- return('1 = 1') -}}
    {%- endif -%}
    {{- return('(' ~ condition ~ ')') -}}
{%- endmacro %}

{#- The start of the latest build that tested every row, as an instant; 1970 when there is none. When the
    test runs, a literal read from the build log then (one query): a constant lets DuckDB skip the row
    groups loaded before it by their min/max, where a scalar subquery made it read and compare every row
    (at 10M events, `row_checks_stg_events` with nothing new: 0.8 s against 0.01 s). While dbt parses, the
    same query as a scalar subquery. -#}
{% macro test_scope_start() -%}
    {%- set query = adapter.dispatch('test_scope_start_query')() -%}
    {#- Unscoped (parsing, `dbt compile`, `dbt test`, a full check), the callers keep every row and never
        use the start: the build log is not read, so those commands work before the first build has
        created it (and sqlfluff can lint the tests that compute a scope in their SQL). -#}
    {%- if not execute or not test_scope_is_scoped() -%}
        {{ return('(' ~ query ~ ')') }}
    {%- endif -%}
    {{ return(adapter.dispatch('test_scope_instant')(test_scope_start_text())) }}
{%- endmacro %}

{#- That start as UTC wall-clock text ('1970-01-01 00:00:00…' when no build was tested), read from the
    build log (one query); none when the test is not scoped (the log is then not read). -#}
{% macro test_scope_start_text() -%}
    {%- if not execute or not test_scope_is_scoped() -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set found = run_query(adapter.dispatch('test_scope_start_query')()).columns[0].values()[0] -%}
    {{- return(found if found is string else found.strftime('%Y-%m-%d %H:%M:%S.%f')) -}}
{%- endmacro %}

{#- The query of that start: the log holds UTC wall-clock times (timestamp without zone). -#}
{% macro default__test_scope_start_query() -%}
    select coalesce(max(tested_builds.tested_loads_before), cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }}))
    from audit.dbt_build_log as tested_builds
    where
        tested_builds.reporting_timezone = '{{ var("reporting_timezone", "UTC") }}'
        and tested_builds.reporting_currency = '{{ var("reporting_currency", "USD") }}'
{%- endmacro %}

{#- A UTC wall-clock time (text) as an instant: `at time zone 'UTC'` makes it one on DuckDB and PostgreSQL
    whatever the session's time zone. -#}
{% macro default__test_scope_instant(text) -%}
    (cast('{{ text }}' as {{ dbt.type_timestamp() }}) at time zone 'UTC')
{%- endmacro %}

{#- Spark's timestamp is an instant, read in the session time zone, which both Spark targets pin to UTC. -#}
{% macro spark__test_scope_instant(text) -%}
    cast('{{ text }}' as timestamp)
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

{#-
    Scopes of the period marts, whose keys are periods of instants of their inputs. Each is a query of
    `period_date` for test_scope_keys; a period key is scoped by its date alone (every period type
    starting that day), a little wider than the periods rewritten.
-#}

{#- The periods (`grains` of reporting_period_start: 'day', 'week', 'month') the conversion rollups and
    conversion_metrics recompute for the conversions loaded since the start of the last tested build:
    the rule of their incremental runs (changed_conversion_instants), measured from that start. -#}
{% macro test_scope_conversion_periods(grains, first_of_types=none) -%}
    {%- set instants = changed_conversion_instants(
        test_scope_start(),
        first_of_types,
        copies=test_scope_relation('int_conversion_identities'),
        conversions=test_scope_relation('conversion_event'),
    ) -%}
    {%- set periods -%}
        {%- for grain in grains %}
            {%- if not loop.first %} union {% endif -%}
            select {{ reporting_period_start('changed_conversions.touched_at', grain) }} as period_date
            from ({{ instants }}) as changed_conversions
        {%- endfor %}
    {%- endset -%}
    {{- return(periods) -}}
{%- endmacro %}

{#- The days, weeks and months where a person whose funnel matching changed since the start of the last
    tested build (int_funnel_steps_matched.person_loaded_at) starts a funnel: the periods funnel_stats
    recomputes for them. -#}
{% macro test_scope_funnel_periods() -%}
    {%- set changed_funnels -%}
        select funnels.started_at
        from {{ test_scope_relation('conversion_funnel') }} as funnels
        where funnels.person_id in (
            select matched_rows.person_id
            from {{ test_scope_relation('int_funnel_steps_matched') }} as matched_rows
            where matched_rows.person_loaded_at >= {{ test_scope_start() }}
        )
    {%- endset -%}
    {%- set periods -%}
        {%- for grain in ['day', 'week', 'month'] %}
            {%- if not loop.first %} union {% endif -%}
            select {{ reporting_period_start('changed_funnels.started_at', grain) }} as period_date
            from ({{ changed_funnels }}) as changed_funnels
        {%- endfor %}
    {%- endset -%}
    {{- return(periods) -}}
{%- endmacro %}

{#- conversion_funnel rows whose is_open may have been recomputed since the start of the last tested
    build: not converted, closing after the latest event loaded before that start. The data end of
    every build since was at least that event, and a run recomputes the rows whose is_open its data end
    flips: unconverted rows that were open (closing after an earlier data end) or close after its own. -#}
{% macro test_scope_open_funnels(key=none) -%}
    {%- set condition -%}
        not is_converted
        and window_closes_at > (
            select max(events.event_time)
            from {{ test_scope_relation('int_events_deduplicated') }} as events
            where events._loaded_at < {{ test_scope_start() }}
        )
    {%- endset -%}
    {{- return(test_scope_rows(condition, key)) -}}
{%- endmacro %}

{#- meta_capi_events rows whose status the reference time can have changed since the start of the last
    tested build: event_time (unix seconds) no more than Meta's longest window (62 days, physical_store)
    before that start, or later. The reference time of a build without var meta_export_as_of is its
    own time, so every row that expired, or came into the window, since then is among them. -#}
{% macro test_scope_meta_window(key=none) -%}
    {%- set condition -%}
        event_time >= {{ epoch_microseconds(test_scope_start()) }} / 1000000 - 62 * 24 * 3600
    {%- endset -%}
    {{- return(test_scope_rows(condition, key)) -}}
{%- endmacro %}

{#- The periods (`grains`) of `instant` in the rows of model `relation` (a name) whose `watermark` is at or
    after the start of the last tested build, e.g. the periods of the conversions whose credits
    int_attribution_credits recomputed since (inputs_loaded_at). -#}
{% macro test_scope_periods(relation, watermark, instant, grains) -%}
    {%- set periods -%}
        {%- for grain in grains %}
            {%- if not loop.first %} union {% endif -%}
            select {{ reporting_period_start('recent_rows.' ~ instant, grain) }} as period_date
            from {{ test_scope_relation(relation) }} as recent_rows
            where recent_rows.{{ watermark }} >= {{ test_scope_start() }}
        {%- endfor %}
    {%- endset -%}
    {{- return(periods) -}}
{%- endmacro %}

{#- The scope of the marts keyed by attributed conversion (conversion_attribution, attribution_paths): the
    conversions of a key with a copy loaded since (int_conversions_valued.last_loaded_at, widened to the
    key) and those whose credits were recomputed since (int_attribution_credits.inputs_loaded_at), the
    conversions their incremental runs rewrite. -#}
{% macro test_scope_attributed_conversions() -%}
    {{- return(test_scope_keys('conversion_id', [
        test_scope_query(
            'last_loaded_at', 'conversion_id', relation='int_conversions_valued', relation_key='id',
            relation_group='conversion_key'
        ),
        test_scope_query('inputs_loaded_at', 'conversion_id', relation='int_attribution_credits'),
    ])) -}}
{%- endmacro %}

{#- The periods (`grains`) of the conversions whose conversion_attribution rows may have changed since the
    start of the last tested build: every copy's time of each conversion key with a copy loaded since (a
    conversion that moved, split or disappeared: test_scope_conversion_periods), the conversions valued
    again since (int_conversions_valued.last_loaded_at) and those whose credits were recomputed since
    (int_attribution_credits.inputs_loaded_at). For an aggregate of conversion_attribution by period (the
    report view rpt_attribution_by_campaign), whose other periods sum rows that did not change. -#}
{% macro test_scope_attribution_periods(grains) -%}
    {%- set periods -%}
        {{ test_scope_conversion_periods(grains) }}
        union
        {{ test_scope_periods('int_conversions_valued', 'last_loaded_at', 'conversion_time', grains) }}
        union
        {{ test_scope_periods('int_attribution_credits', 'inputs_loaded_at', 'conversion_time', grains) }}
    {%- endset -%}
    {{- return(periods) -}}
{%- endmacro %}
