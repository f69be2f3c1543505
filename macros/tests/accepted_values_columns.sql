{#-
    Fails for every combination of values outside the accepted ones, over several columns of a model
    in one query: dbt's accepted_values for each column of `values_by_column` (column: [values]), with
    one scan instead of one per column. Values are compared as quoted strings; nulls are accepted, as
    dbt's accepted_values accepts them. Each failing row says which column holds which value, and how
    many rows have that combination.
-#}
{% test accepted_values_columns(model, values_by_column) %}
    {%- set rejected = [] -%}
    {%- for column, values in values_by_column.items() -%}
        {%- set accepted -%}
            ({% for value in values %}'{{ value }}'{{ ', ' if not loop.last }}{% endfor %})
        {%- endset -%}
        {%- do rejected.append((column, column ~ ' not in ' ~ accepted)) -%}
    {%- endfor %}
    select
        rejected_rows.rejected_values,
        count(*) as n_records
    from (
        select
            concat_ws(
                ', ',
                {%- for column, condition in rejected %}
                case when {{ condition }} then concat('{{ column }} = ', cast({{ column }} as {{ dbt.type_string() }})) end
                {{- ',' if not loop.last }}
                {%- endfor %}
            ) as rejected_values
        from {{ model }}
        where
            {%- for column, condition in rejected %}
            {{ 'or ' if not loop.first }}{{ condition }}
            {%- endfor %}
    ) as rejected_rows
    group by rejected_rows.rejected_values
{% endtest %}
