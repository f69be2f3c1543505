{#-
    How a model's table is compressed on disk, for a model whose table is mostly long text that
    DuckDB's default string compression handles poorly: `force_table_compression('zstd')` as the
    model's last pre-hook and `reset_table_compression()` as its first post-hook.

    DuckDB picks a compression method per column segment by trying each candidate; for
    meta_capi_events, whose `payload` is about a kilobyte of JSON per row (mostly SHA-256 hex), that
    trial plus the dictionary/FSST encoding it picks cost about as much CPU as building the rows, and
    leave the table at roughly half its raw size. zstd takes about a third of that CPU and leaves
    a table under half the size again (1M rows: 590 MB with the default, 215 MB with zstd). Reading
    it back costs a little more (about 0.5 CPU s per 1M payloads in `convopt export-meta`).

    DuckDB's setting is global to the database, not per table: the tables other threads write while
    the model builds are zstd-compressed too (their data is unchanged, only how it is stored), and
    on-run-end resets it once more in case a model failed between its hooks. Nothing on other
    engines (PostgreSQL compresses long text itself with TOAST; Spark writes Parquet).
-#}
{% macro force_table_compression(method) -%}
    {{ return(adapter.dispatch('force_table_compression')(method)) }}
{%- endmacro %}

{% macro default__force_table_compression(method) -%}
{%- endmacro %}

{% macro duckdb__force_table_compression(method) -%}
    {%- if method not in ('zstd', 'uncompressed') -%}
        {{ exceptions.raise_compiler_error(
            "force_table_compression: method must be 'zstd' or 'uncompressed', got '" ~ method ~ "'") }}
    {%- endif -%}
    set force_compression = '{{ method }}'
{%- endmacro %}

{% macro reset_table_compression() -%}
    {{ return(adapter.dispatch('reset_table_compression')()) }}
{%- endmacro %}

{% macro default__reset_table_compression() -%}
{%- endmacro %}

{% macro duckdb__reset_table_compression() -%}
    reset force_compression
{%- endmacro %}
