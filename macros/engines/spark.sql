{#-
    Spark (dbt-spark, Spark 4.3) implementations of the project's dispatched macros. Each one
    documents itself next to its generic macro; only the Spark spelling is here. The Spark targets
    pin the session time zone to UTC (profiles.yml), which `to_reporting_timezone` relies on.

    Spark SQL string literals treat a backslash as an escape character, so every regular expression
    here doubles its backslashes ('\\p{L}' reaches Java's regex engine as \p{L}).
-#}

{#- Exact integer arithmetic in decimal(38, 0) (Spark has no 128-bit integer type); `div` truncates,
    which is the floor here because every operand is >= 0. -#}
{% macro spark__convert_cents(value_cents, from_units_per_usd, to_units_per_usd) -%}
    cast(
        (
            2 * cast({{ value_cents }} as decimal(38, 0)) * cast({{ to_units_per_usd }} * 1000000 as decimal(38, 0))
            + cast({{ from_units_per_usd }} * 1000000 as decimal(38, 0))
        ) div (2 * cast({{ from_units_per_usd }} * 1000000 as decimal(38, 0)))
        as bigint
    )
{%- endmacro %}

{#- The UTC day from the instant's epoch microseconds: independent of the session time zone. -#}
{% macro spark__utc_date(timestamp_expression) -%}
    date_from_unix_date(cast(floor(unix_micros({{ timestamp_expression }}) / 86400000000) as int))
{%- endmacro %}

{% macro spark__first_non_null(expression, order_expression, where) -%}
    min_by({{ expression }}, {{ order_expression }}) filter (
        where {{ expression }} is not null{% if where %} and ({{ where }}){% endif %}
    )
{%- endmacro %}

{#- to_json only takes structs, maps and arrays: serialize {"v": value} and keep the value part. -#}
{% macro spark__meta_to_json(expression) -%}
    regexp_extract(to_json(named_struct('v', {{ expression }})), '^\\{"v":(.*)\\}$', 1)
{%- endmacro %}

{% macro spark__meta_sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{% macro spark__meta_is_sha256_hex(expression) -%}
    (length({{ expression }}) = 64 and {{ expression }} rlike '^[0-9a-f]{64}$')
{%- endmacro %}

{#- Spark has no SQL function for Unicode normalization; ICU4J (shipped with Spark 4) has a static
    one, called through `reflect` (null-guarded: reflect passes a null on and ICU throws). `reflect`
    is nondeterministic, which Spark refuses inside join conditions and does not initialize inside
    decorrelated subqueries: spark__meta_lookup below therefore looks values up in a map built by an
    uncorrelated subquery, never by correlation. -#}
{% macro spark__meta_clean_lower(expression) -%}
    {%- set trimmed = trim_whitespace(expression) -%}
    lower(case when {{ trimmed }} is not null then reflect('com.ibm.icu.text.Normalizer', 'compose', {{ trimmed }}, false) end)
{%- endmacro %}

{#- macros/clean_string.sql: Spark's two-argument trim takes the characters first (trim(chars, text))
    and its chr(n) is chr(n % 256), so the default would trim the wrong string with the wrong
    characters; btrim(text, characters) with \uXXXX escapes in the literal is the Spark spelling. -#}
{% macro spark__trim_whitespace(expression) -%}
    {%- set code_points = [9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760]
        + range(8192, 8203) | list + [8232, 8233, 8239, 8287, 12288] -%}
    case
        when ascii({{ expression }}) between 33 and 126 and ascii(right({{ expression }}, 1)) between 33 and 126
            then {{ expression }}
        else btrim({{ expression }}, '{% for code_point in code_points %}\u{{ '%04x' % code_point }}{% endfor %}')
    end
{%- endmacro %}

{#- macros/meta/meta_engine_helpers.sql, meta_lookup: the lookup table as one map, built once by an
    uncorrelated scalar subquery, then probed per row. Spark resolves outer references one subquery
    level deep only, so the default correlated form fails when the probe is itself a lookup
    (meta_calling_code(country) = a lookup on meta_normalize_country(country), another lookup). -#}
{% macro spark__meta_lookup(lookup_sql, lookup_expression) -%}
    try_element_at(
        (
            select map_from_entries(collect_list(struct(meta_lookup_table.lookup_key, meta_lookup_table.lookup_value)))
            from ({{ lookup_sql }}) as meta_lookup_table
        ),
        {{ lookup_expression }}
    )
{%- endmacro %}

{% macro spark__meta_letters_only(expression) -%}
    regexp_replace({{ expression }}, '[^\\p{L}\\p{M}]', '')
{%- endmacro %}

{% macro spark__meta_digits_only(expression) -%}
    regexp_replace({{ expression }}, '[^0-9]', '')
{%- endmacro %}

{% macro spark__meta_has_letter(expression) -%}
    ({{ expression }} rlike '\\p{L}')
{%- endmacro %}

{% macro spark__meta_is_email(expression) -%}
    ({{ expression }} rlike '^[^@\\s]+@[^@\\s.][^@\\s]*\\.[^@\\s.][^@\\s]*$')
{%- endmacro %}

{#- Same formats and order as duckdb__meta_parse_date_yyyymmdd; `M`/`d` accept one or two digits,
    try_to_timestamp is null for text that does not fit or a date that does not exist. -#}
{% macro spark__meta_parse_date_yyyymmdd(expression) -%}
    {%- set parsed -%}
        coalesce(
            try_to_timestamp({{ expression }}, 'yyyy-M-d'),
            try_to_timestamp({{ expression }}, 'yyyyMMdd'),
            try_to_timestamp({{ expression }}, 'yyyy/M/d'),
            try_to_timestamp({{ expression }}, 'M/d/yyyy'),
            try_to_timestamp({{ expression }}, 'd.M.yyyy')
        )
    {%- endset -%}
    date_format(
        case when year({{ parsed }}) between 1900 and 2099 then {{ parsed }} end,
        'yyyyMMdd'
    )
{%- endmacro %}

{#-
    The Spark spelling of a column type written for DuckDB/Postgres in YAML (seed `column_types`,
    contract `data_type`): Spark rejects a size-less varchar ([DATATYPE_MISSING_SIZE]) and has no
    `timestamp with time zone` (its `timestamp` is already an instant). Other types are returned as is.
-#}
{% macro spark_type_from_yaml(data_type) -%}
    {%- set normalized = data_type | lower | trim -%}
    {%- if normalized in ['varchar', 'text', 'character varying'] -%}
        {{- return('string') -}}
    {%- elif normalized in ['timestamp with time zone', 'timestamptz'] -%}
        {{- return('timestamp') -}}
    {%- endif -%}
    {{- return(data_type) -}}
{%- endmacro %}

{#- Seeds: seeds/_seeds.yml declares `varchar` column types; everything else is dbt-spark's seed code. -#}
{% macro spark_seed_column_types(model) -%}
    {%- set column_types = model['config'].get('column_types') or {} -%}
    {%- for column_name, column_type in column_types.items() -%}
        {%- do column_types.update({column_name: spark_type_from_yaml(column_type)}) -%}
    {%- endfor -%}
{%- endmacro %}

{#- Contracts (conversion_event): the YAML data_types in Spark spelling, then dbt's own check. -#}
{% macro spark__get_empty_schema_sql(columns) -%}
    {%- set translated = {} -%}
    {%- for name in columns -%}
        {%- set column = {} -%}
        {%- do column.update(columns[name]) -%}
        {%- if column.get('data_type') -%}
            {%- do column.update({'data_type': spark_type_from_yaml(column['data_type'])}) -%}
        {%- endif -%}
        {%- do translated.update({name: column}) -%}
    {%- endfor -%}
    {{ return(dbt.default__get_empty_schema_sql(translated)) }}
{%- endmacro %}

{% macro spark__create_csv_table(model, agate_table) -%}
    {%- do spark_seed_column_types(model) -%}
    {{ return(dbt.spark__create_csv_table(model, agate_table)) }}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- do spark_seed_column_types(model) -%}
    {{ return(dbt.spark__load_csv_rows(model, agate_table)) }}
{%- endmacro %}

{#-
    Incremental `delete+insert` on Spark without Delta/Iceberg (what our incremental models use; see
    docs/engines.md). Parquet tables support neither DELETE nor MERGE, and Spark cannot
    overwrite a table it reads in the same query, so the strategy rewrites the table:
      1. the model's new rows (dbt's temporary view, which may read {{ this }}) are materialized;
      2. <table>__dbt_next = the current rows whose unique key is not among the new rows (left anti
         join: like DELETE … WHERE key IN, a null key never matches) union all the new rows;
      3. the current table is dropped and <table>__dbt_next renamed to it.
    Same result as delete+insert; the cost is a rewrite of the whole table per incremental run (the
    model's own SQL still reads only the new data). Not atomic: a failure between 3's drop and rename
    leaves <table>__dbt_next holding every row. `incremental_predicates` are not supported.
-#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) -%}
    {%- if raw_strategy == 'delete+insert' -%}
        {%- do return(raw_strategy) -%}
    {%- endif -%}
    {%- do return(dbt.dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format)) -%}
{%- endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) -%}
    {%- if strategy != 'delete+insert' -%}
        {{ return(dbt.dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates)) }}
    {%- endif -%}
    {%- if not unique_key -%}
        {{ exceptions.raise_compiler_error("delete+insert on Spark needs a unique_key (" ~ target ~ ")") }}
    {%- endif -%}
    {%- if incremental_predicates -%}
        {{ exceptions.raise_compiler_error("delete+insert on Spark does not support incremental_predicates (" ~ target ~ ")") }}
    {%- endif -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = adapter.get_columns_in_relation(target) | map(attribute='name') | list -%}
    {%- set column_list = columns | map('string') | join(', ') -%}
    {%- set new_rows = target.incorporate(path={"identifier": target.identifier ~ '__dbt_new'}) -%}
    {%- set next_table = target.incorporate(path={"identifier": target.identifier ~ '__dbt_next'}) -%}
    {%- do run_query('drop table if exists ' ~ new_rows) -%}
    {%- do run_query('drop table if exists ' ~ next_table) -%}
    {%- do run_query('create table ' ~ new_rows ~ ' using parquet as select ' ~ column_list ~ ' from ' ~ source) -%}
    {%- set next_sql -%}
        create table {{ next_table }} using parquet as
        select {% for column in columns %}kept.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
        from {{ target }} as kept
        left anti join {{ new_rows }} as new_rows
            on {% for key in keys %}kept.{{ key }} = new_rows.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        union all
        select {{ column_list }} from {{ new_rows }}
    {%- endset -%}
    {%- do run_query(next_sql) -%}
    {%- do run_query('drop table ' ~ new_rows) -%}
    {%- do run_query('drop table ' ~ target) -%}
    alter table {{ next_table }} rename to {{ target }}
{%- endmacro %}

{#-
    Contract constraints (not_null) can only be added to Delta tables. dbt-spark decides with
    config.get('file_format', 'delta'), i.e. treats a model without a file_format as Delta, while it
    creates such tables as Parquet; then `ALTER COLUMN … SET NOT NULL` fails
    ([UNSUPPORTED_FEATURE.TABLE_OPERATION]). Here the default is the real one, parquet: on Parquet the
    contract checks column names and types, and not_null is left to the YAML data tests.
-#}
{% macro spark__persist_constraints(relation, model) -%}
    {%- if config.get('file_format', 'parquet') == 'delta' -%}
        {%- do dbt.spark__persist_constraints(relation, model) -%}
    {%- endif -%}
{%- endmacro %}

{#-
    DELETE for Parquet tables, which Spark cannot delete from ([UNSUPPORTED_FEATURE.TABLE_OPERATION]
    … does not support DELETE): keep the rows where `condition` is not true in <table>__dbt_keep,
    drop the table and rename the copy. Runs its statements itself and returns the last one, so it
    can stand where a single DELETE statement is expected (a pre-hook).
-#}
{% macro spark_delete_rows_where(relation, condition) -%}
    {%- set keep = relation.incorporate(path={"identifier": relation.identifier ~ '__dbt_keep'}) -%}
    {%- do run_query('drop table if exists ' ~ keep) -%}
    {%- do run_query(
        'create table ' ~ keep ~ ' using parquet as select * from ' ~ relation
        ~ ' where not coalesce((' ~ condition ~ '), false)'
    ) -%}
    {%- do run_query('drop table ' ~ relation) -%}
    alter table {{ keep }} rename to {{ relation }}
{%- endmacro %}

{#- macros/delete_rows_where.sql: the same rewrite, with the rows the condition tests named `target_rows`.
    The condition (an [NOT] EXISTS or IN, never null) stands directly under NOT: Spark rewrites a correlated
    EXISTS only as a predicate of the filter, not inside another function such as coalesce. -#}
{% macro spark__delete_rows_where(relation, condition) -%}
    {%- set keep = relation.incorporate(path={"identifier": relation.identifier ~ '__dbt_keep'}) -%}
    {%- do run_query('drop table if exists ' ~ keep) -%}
    {%- do run_query(
        'create table ' ~ keep ~ ' using parquet as select target_rows.* from ' ~ relation
        ~ ' as target_rows where not (' ~ condition ~ ')'
    ) -%}
    {%- do run_query('drop table ' ~ relation) -%}
    alter table {{ keep }} rename to {{ relation }}
{%- endmacro %}

{#- macros/incremental_state.sql: Spark's `timestamp` is an instant. -#}
{% macro spark__type_timestamp_tz() -%}
    timestamp
{%- endmacro %}

{#- For the pre-hook of the incremental funnel models, once delete_outdated_funnel_rows dispatches
    (macros/funnel_definition_hashes.sql; see docs/engines.md). -#}
{% macro spark__delete_outdated_funnel_rows(relation) -%}
    {{ spark_delete_rows_where(
        relation,
        "funnel_definition_hash not in (select current_definitions.funnel_definition_hash from ("
        ~ funnel_definition_hashes() ~ ") as current_definitions)"
    ) }}
{%- endmacro %}

{#- For the pre-hook of meta_capi_events' incremental runs (macros/meta/meta_capi_incremental.sql). -#}
{% macro spark__delete_meta_capi_events_without_rule(relation) -%}
    {{ spark_delete_rows_where(
        relation,
        "conversion_type not in (select rules.conversion_type from " ~ ref('optimization_rules') ~ " as rules)"
    ) }}
{%- endmacro %}

{#- Spark 4 fails with an internal error (ClassCastException: AttributeReference cannot be cast to
    SortOrder) on an aggregate with an ordered LISTAGG beside count(distinct) of two different columns,
    as a touch path's columns (touch_path_columns) have. The size of the set of values is the same count
    (collect_set drops nulls, as count(distinct) does). -#}
{% macro spark__count_distinct(expression) -%}
    size(collect_set({{ expression }}))
{%- endmacro %}

{#-
    dbt-spark's listagg ignores order_by_clause (a warning, then collect_list in arbitrary order), so
    the MD5s of attribution_settings_hash / funnel_definition_hashes would change between runs and
    never match DuckDB's. Spark 4 has the standard LISTAGG … WITHIN GROUP (ORDER BY …).
-#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ return(dbt.spark__listagg(measure, delimiter_text, order_by_clause, limit_num)) }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }}){% if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}

{#- macros/json_access.sql on Spark 4: get_json_object for text, the VARIANT type for types and arrays. -#}
{% macro spark__json_text(json_expression, keys) -%}
    get_json_object({{ json_expression }}, '$.{{ keys | join(".") }}')
{%- endmacro %}

{#- macros/json_access.sql: a key given as a text expression, in a bracketed JSON path. -#}
{% macro spark__json_text_at_key(json_expression, key_expression) -%}
    get_json_object({{ json_expression }}, concat('$[\'', {{ key_expression }}, '\']'))
{%- endmacro %}

{#- Null in, null out, as DuckDB's json_valid. -#}
{% macro spark__json_is_valid(json_expression) -%}
    (case when {{ json_expression }} is not null then try_parse_json({{ json_expression }}) is not null end)
{%- endmacro %}

{#- 'ARRAY', 'OBJECT' as on DuckDB; scalars by Spark's variant type names (STRING, BIGINT, …). -#}
{% macro spark__json_type_name(json_expression, keys) -%}
    regexp_extract(
        schema_of_variant(variant_get(try_parse_json({{ json_expression }}), '$.{{ keys | join(".") }}')),
        '^[A-Z]+',
        0
    )
{%- endmacro %}

{% macro spark__json_unnest_array_strings(json_expression, keys, otherwise) -%}
    explode(coalesce(
        try_variant_get(try_parse_json({{ json_expression }}), '$.{{ keys | join(".") }}', 'array<string>'),
        array('{{ otherwise }}')
    ))
{%- endmacro %}

{#- macros/regexp_full_match.sql: Java regex anchored; backslashes doubled for the Spark literal. -#}
{% macro spark__regexp_full_match(expression, pattern) -%}
    ({{ expression }} rlike '^(?:{{ pattern | replace("\\", "\\\\") | replace("'", "\\'") }})$')
{%- endmacro %}

{#- macros/hook_statements.sql: one statement per Thrift call; the last is the hook's own text. -#}
{% macro spark__hook_statements(statements) -%}
    {%- for statement in statements[:-1] -%}
        {%- do run_query(statement) -%}
    {%- endfor -%}
    {{ statements[-1] }}
{%- endmacro %}

{#-
    dbt.dateadd for hours, minutes, seconds and smaller: dbt-spark's goes through
    to_unix_timestamp(), which drops the fraction of a second (conversion_funnel.window_closes_at
    lost the microseconds of every event time, and the dedup window compared whole seconds), and
    raises on a null timestamp. timestampadd adds exact microseconds and passes nulls through, as
    DuckDB and PostgreSQL do. Days, weeks, months: dbt-spark's own macro.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- if datepart | lower in ('hour', 'minute', 'second', 'millisecond', 'microsecond') -%}
        timestampadd({{ datepart | upper }}, cast({{ interval }} as bigint), {{ from_date_or_timestamp }})
    {%- else -%}
        {{ dbt_spark.spark__dateadd(datepart, interval, from_date_or_timestamp) }}
    {%- endif -%}
{%- endmacro %}
