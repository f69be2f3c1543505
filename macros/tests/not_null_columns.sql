{#-
    Fails for every row where one of `columns` is null: dbt's not_null for several columns of a model
    in one query (one scan instead of one per column). Each failing row names its null columns.
-#}
{% test not_null_columns(model, columns) %}
    select
        concat_ws(
            ', ',
            {%- for column in columns %}
            case when {{ column }} is null then '{{ column }}' end{{ ',' if not loop.last }}
            {%- endfor %}
        ) as null_columns
    from {{ model }}
    where
        {%- for column in columns %}
        {{ 'or ' if not loop.first }}{{ column }} is null
        {%- endfor %}
{% endtest %}
