-- Daily delivery per campaign × ad set × ad. Ads-insights exports restate recent days (late
-- attribution of spend), so when a day × ad arrives again in a later file, the latest load wins.
with source as (
    select * from {{ source('raw', 'ad_spend') }}
),

renamed as (
    select
        {{ clean_string('campaign_id') }} as campaign_id,
        {{ clean_string('ad_set_id') }} as ad_set_id,
        {{ clean_string('ad_id') }} as ad_id,
        {{ clean_string('campaign_name') }} as campaign_name,
        {{ clean_string('ad_set_name') }} as ad_set_name,
        {{ clean_string('ad_name') }} as ad_name,
        upper({{ clean_string('currency') }}) as currency,
        spend_cents,
        impressions,
        clicks,
        date as spend_date,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from source
),

ranked as (
    select
        *,
        {{ latest_load_rank(['spend_date', 'campaign_id', 'ad_set_id', 'ad_id']) }} as restatement_rank
    from renamed
),

latest_restatement as (
    select
        campaign_id,
        ad_set_id,
        ad_id,
        campaign_name,
        ad_set_name,
        ad_name,
        currency,
        spend_cents,
        impressions,
        clicks,
        spend_date,
        _load_id,
        _source_file,
        _source_row,
        _loaded_at
    from ranked
    where restatement_rank = 1
)

select * from latest_restatement
