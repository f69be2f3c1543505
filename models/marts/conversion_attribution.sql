{%- set state = conversion_attribution_incremental_state() -%}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['conversion_id', 'attribution_model'],
        on_schema_change='fail',
        pre_hook=[
            "{{ write_touched_keys(conversion_attribution_incremental_state()) }}",
            "{{ delete_touched_rows(conversion_attribution_incremental_state()) }}",
        ],
        post_hook="{{ save_incremental_state(conversion_attribution_incremental_state()) }}",
    )
}}
{%- set is_incremental_run = incremental_spec_is_current(state) %}

-- One row per conversion × attribution model × credited touchpoint (see the docs block
-- attribution_semantics): the credits of int_attribution_credits applied to the conversion's value in
-- the reporting currency. Credited values are whole cents: each row gets floor(value × credit) and the
-- cents lost by rounding go to the latest credited touch, so the credited values of one conversion and
-- model add up to exactly its value.
--
-- Incremental by conversion and attribution model (delete+insert on conversion_id, attribution_model;
-- macros/incremental_state.sql keeps the watermarks in audit.incremental_state, as the columns hold no
-- load time). A conversion's rows of one model depend only on its credits in that model and on its own
-- row in int_conversions_valued, so a run recomputes (audit.conversion_attribution_touched_keys,
-- macros/touched_keys.sql):
-- * every model of the conversions of a key (conversion_type, event_id) with a copy loaded since the
--   last run (last_loaded_at): new ones, those whose value, type or attributes changed (values change
--   only when a copy is loaded), and those a late copy re-clustered (new ids, possibly with old copies);
-- * every model of the conversions whose credits int_attribution_credits recomputed from a newer input
--   (inputs_loaded_at: a touchpoint entered the lookback window, or a new copy);
-- * the markov rows of the conversions whose markov credits differ from the stored ones, when the
--   markov credits' attribution_settings_hash (it covers the Markov removal effects, which new paths
--   change) is not the one of the last run (recorded as state `markov_settings`);
-- * the conversions that no longer exist (a late copy re-clustered their key): their rows are only
--   deleted.
-- Every row is recomputed when the attribution settings the other models' credits were computed with
-- (attribution_settings_hash: lookback, half-life, channel mapping) or var `reporting_currency` changed,
-- and on the first run without saved state. A changed exchange-rate seed needs --full-refresh, as it
-- does for int_conversions_valued, which holds the values. A full refresh gives the same rows.

with credits as (
    select credits.* from {{ ref('int_attribution_credits') }} as credits
    {%- if is_incremental_run %}
        where exists (
            select 1
            from {{ touched_keys_relation() }} as touched
            where
                touched.conversion_id = credits.conversion_id
                and touched.attribution_model = credits.attribution_model
        )
    {%- endif %}
),

conversions as (
    select * from {{ ref('int_conversions_valued') }}
    {%- if is_incremental_run %}
        where id in (select touched.conversion_id from {{ touched_keys_relation() }} as touched)
    {%- endif %}
),

-- Not materialized: credit_totals and balanced each read it (DuckDB would otherwise hold every row in
-- memory first, and spill at 10M events).
valued_credits as {{ not_materialized_cte_hint() }} (
    select
        credits.*,
        conversions.conversion_type,
        conversions.value_cents_reporting,
        conversions.net_value_cents_reporting,
        conversions.is_refunded,
        cast(floor(conversions.value_cents_reporting * credits.credit) as {{ dbt.type_bigint() }})
            as rounded_value_cents,
        cast(floor(conversions.net_value_cents_reporting * credits.credit) as {{ dbt.type_bigint() }})
            as rounded_net_value_cents
    from credits
    inner join conversions
        on credits.conversion_id = conversions.id
),

-- Per conversion and attribution model: its latest credited touch and the sums of the rounded shares. A
-- group-by joined back, not window functions: over millions of partitions of a few rows DuckDB's windows
-- took twice as long as the whole model does now (10M events: 52 of 62 s in one run of the query alone).
credit_totals as (
    select
        valued_credits.conversion_id,
        valued_credits.attribution_model,
        max(valued_credits.touch_position) as last_touch_position,
        sum(valued_credits.rounded_value_cents) as rounded_value_cents,
        sum(valued_credits.rounded_net_value_cents) as rounded_net_value_cents
    from valued_credits
    group by
        valued_credits.conversion_id,
        valued_credits.attribution_model
),

balanced as (
    -- Each credit's share rounded down; the latest credited touch takes the remainder, so the shares
    -- add up to the conversion's value exactly (gross and net alike).
    select
        valued_credits.*,
        {{ balanced_credit_cents('valued_credits', 'credit_totals', 'value_cents_reporting', 'rounded_value_cents') }}
            as credited_value_cents,
        {{ balanced_credit_cents(
            'valued_credits', 'credit_totals', 'net_value_cents_reporting', 'rounded_net_value_cents'
        ) }} as credited_net_value_cents
    from valued_credits
    inner join credit_totals
        on
            valued_credits.conversion_id = credit_totals.conversion_id
            and valued_credits.attribution_model = credit_totals.attribution_model
),

final as (
    select
        id,
        conversion_id,
        person_id,
        attribution_model,
        touchpoint_event_id,
        campaign_id,
        ad_set_id,
        ad_id,
        conversion_type,
        channel,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_content,
        cast('{{ var("reporting_currency", "USD") }}' as {{ dbt.type_string() }}) as reporting_currency,
        touch_position,
        touches_in_path,
        credit,
        value_cents_reporting,
        cast(credited_value_cents as {{ dbt.type_bigint() }}) as credited_value_cents,
        net_value_cents_reporting,
        cast(credited_net_value_cents as {{ dbt.type_bigint() }}) as credited_net_value_cents,
        is_refunded,
        last_click_to_conversion_hours,
        touchpoint_time,
        conversion_time
    from balanced
)

select * from final
