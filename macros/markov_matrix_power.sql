{#-
    CTEs that raise the Markov chain's one-step matrices to the power 2^squarings by repeated squaring
    (int_attribution_markov_effects). `matrix` names a relation of rows (removed_state, from_state, to_state,
    probability): one sparse matrix per removal scenario. The last CTE, named `result_name`, has the same columns:
    the matrices raised to the power, without the cells that are 0. A factor of 1e-150 or less counts as 0:
    such factors change no result at 12 decimals, and their products would underflow, which PostgreSQL
    reports as an error. Dispatched: Spark squares dense arrays instead (see spark__markov_matrix_power_ctes).
-#}
{% macro markov_matrix_power_ctes(matrix, squarings, result_name) -%}
    {{ return(adapter.dispatch('markov_matrix_power_ctes')(matrix, squarings, result_name)) }}
{%- endmacro %}

{#- One CTE per squaring, each the previous one joined with itself. materialized_cte_hint keeps DuckDB and
    PostgreSQL from computing a matrix again for each of its two readers. -#}
{% macro default__markov_matrix_power_ctes(matrix, squarings, result_name) -%}
    {%- for power in range(1, squarings + 1) %}
        {%- set previous = matrix if power == 1 else result_name ~ '_' ~ (power - 1) %}
        {{ result_name if power == squarings else result_name ~ '_' ~ power }} as {{ materialized_cte_hint() }} (
            select
                left_matrix.removed_state,
                left_matrix.from_state,
                right_matrix.to_state,
                sum(left_matrix.probability * right_matrix.probability) as probability
            from {{ previous }} as left_matrix
            inner join {{ previous }} as right_matrix
                on
                    left_matrix.removed_state = right_matrix.removed_state
                    and left_matrix.to_state = right_matrix.from_state
            where
                left_matrix.probability > 1e-150
                and right_matrix.probability > 1e-150
            group by
                left_matrix.removed_state,
                left_matrix.from_state,
                right_matrix.to_state
        ){{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- Spark inlines every CTE that is not nondeterministic, so each squaring would copy the plan of the one
    before it twice: 2^32 copies (the Thrift server ran out of memory planning it). Here each removal
    scenario's matrix is one row, a dense array of states_count × states_count probabilities (cell
    from_index × states_count + to_index, states numbered by name), squared in one expression that
    folds over the squarings (aggregate), with the terms of each cell added in the order of the middle
    state. (One projection per squaring instead nests 32 levels deep, past the analyzer's 100 iterations.) -#}
{% macro spark__markov_matrix_power_ctes(matrix, squarings, result_name) -%}
    {%- set n = 'squared.states_count' %}
    {{ result_name }}_states as (
        select
            matrix_states.markov_state,
            cast(row_number() over (order by matrix_states.markov_state) - 1 as int) as state_index,
            cast(count(*) over () as int) as states_count
        from (
            select from_state as markov_state from {{ matrix }}
            union
            select to_state as markov_state from {{ matrix }}
        ) as matrix_states
    ),

    {{ result_name }}_0 as (
        select
            cells.removed_state,
            cells.states_count,
            transform(
                sequence(0, cells.states_count * cells.states_count - 1),
                cell -> coalesce(try_element_at(cells.probabilities, cell), cast(0 as double))
            ) as probabilities
        from (
            select
                one_step.removed_state,
                max(from_states.states_count) as states_count,
                map_from_entries(collect_list(struct(
                    from_states.state_index * from_states.states_count + to_states.state_index,
                    one_step.probability
                ))) as probabilities
            from {{ matrix }} as one_step
            inner join {{ result_name }}_states as from_states
                on one_step.from_state = from_states.markov_state
            inner join {{ result_name }}_states as to_states
                on one_step.to_state = to_states.markov_state
            group by one_step.removed_state
        ) as cells
    ),

    {{ result_name }}_squared as (
        select
            squared.removed_state,
            squared.states_count,
            aggregate(
                sequence(1, {{ squarings }}),
                squared.probabilities,
                (matrix, squaring) -> transform(
                    sequence(0, {{ n }} * {{ n }} - 1),
                    cell -> aggregate(
                        sequence(0, {{ n }} - 1),
                        cast(0 as double),
                        {%- set left_factor = 'matrix[(cell div ' ~ n ~ ') * ' ~ n ~ ' + middle]' %}
                        {%- set right_factor = 'matrix[middle * ' ~ n ~ ' + cell % ' ~ n ~ ']' %}
                        (total, middle) -> total + case
                            when {{ left_factor }} > 1e-150 and {{ right_factor }} > 1e-150
                                then {{ left_factor }} * {{ right_factor }}
                            else cast(0 as double)
                        end
                    )
                )
            ) as probabilities
        from {{ result_name }}_0 as squared
    ),

    {{ result_name }} as (
        select
            cells.removed_state,
            from_states.markov_state as from_state,
            to_states.markov_state as to_state,
            cells.probability
        from (
            select
                squared.removed_state,
                squared.states_count,
                posexplode(squared.probabilities) as (cell, probability)
            from {{ result_name }}_squared as squared
        ) as cells
        inner join {{ result_name }}_states as from_states
            on (cells.cell div cells.states_count) = from_states.state_index
        inner join {{ result_name }}_states as to_states
            on (cells.cell % cells.states_count) = to_states.state_index
        where cells.probability > 0
    )
{%- endmacro %}
