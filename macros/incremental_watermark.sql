{#-
    Incremental helpers shared by the models that recompute "what changed since the last run".
-#}

{% macro last_run_watermark(column) -%}
    {#- The largest `column` of the model's own table (this run's previous output), or 1970 when
        the table is empty: rows loaded after it (`>`) are new to this run. The ingest gives every load
        a time after every earlier load's, so nothing the previous run read is read again and nothing
        it did not read is missed. -#}
    (
        select coalesce(max(previous_run.{{ column }}), cast('1970-01-01 00:00:00+00' as {{ dbt.type_timestamp() }}))
        from {{ this }} as previous_run
    )
{%- endmacro %}

{% macro rows_of_changed_keys(rows, key_columns, watermark_column) -%}
    {#- Every row of the CTE `rows` whose key has a row loaded (`_loaded_at`) after the last run, so
        the model recomputes those keys from all their rows; every row on a full build. The
        previous run's watermark is `watermark_column` of the model's own table. -#}
    {%- if is_incremental() %}
        select {{ rows }}.*
        from {{ rows }}
        inner join (
            select distinct {{ key_columns | join(', ') }}
            from {{ rows }}
            where _loaded_at > {{ last_run_watermark(watermark_column) }}
        ) as changed_keys
            on
            {%- for key in key_columns %}
                {% if not loop.first %}and {% endif %}{{ rows }}.{{ key }} = changed_keys.{{ key }}
            {%- endfor %}
    {%- else %}
        select * from {{ rows }}
    {%- endif %}
{%- endmacro %}
