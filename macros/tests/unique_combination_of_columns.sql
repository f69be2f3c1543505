{#-
    Fails for every combination of the given columns that occurs more than once.
    Our own version of dbt_utils' test (dbt Hub packages cannot be installed here). Nulls compare
    equal, as in `group by`.
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    select
        {{ combination_of_columns | join(', ') }},
        count(*) as n_rows
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}
