-- The stand-alone Meta normalization macros (the ones that look the country up themselves, as the
-- Meta export reuses them) on hand-computed cases; int_conversion_identities' unit tests cover the
-- same rules through the model. Fails with each case whose result differs from the expectation.
-- Tagged `proves_sql`: it checks the macros on constants, not the data, so the scheduled build (the
-- `scheduled` selector) leaves it out, like dbt's unit tests; `dbt build` and `make test` run it.
{{ config(tags=['proves_sql']) }}
with cases as (
    select
        literal_cases.field,
        literal_cases.raw_value,
        literal_cases.country,
        literal_cases.expected
    from (
        values
        ('phone', '(202) 555-0123', 'US', '12025550123'),
        ('phone', '(202) 555-0123', 'United States of America', '12025550123'),
        ('phone', '07911 123456', 'UK', '447911123456'),
        ('phone', '+44 (0)20 7946 0958', null, '442079460958'),
        ('phone', '0049 30 1234567', 'Narnia', '49301234567'),
        ('phone', '091 848 2072', 'ES', '34918482072'),
        ('phone', '06 1234 5678', 'Italy', '390612345678'),
        ('phone', '8 (912) 345-67-89', 'RUS', '79123456789'),
        ('phone', '555-CALL-NOW', 'US', null),
        ('phone', '1234', 'DE', null),
        ('zip', '94103-1234', 'us', '94103'),
        ('zip', '941031234', 'U.S.A.', '94103'),
        ('zip', '9410', 'US', null),
        ('zip', 'SW1A 1AA', 'GB', 'sw1a1aa'),
        ('zip', '00-950', 'Poland', '00950'),
        ('zip', '94103-1234', null, '94103'),
        ('country', 'United States', null, 'us'),
        ('country', 'korea, republic of', null, 'kr'),
        ('country', 'South Korea', null, 'kr'),
        ('country', 'DEU', null, 'de'),
        ('country', 'Narnia', null, null),
        ('state', 'California', null, 'ca'),
        ('state', 'district of columbia', null, 'dc'),
        ('state', 'N.Y.', null, 'ny'),
        ('state', 'Bavaria', null, 'bavaria'),
        ('email', '  Jane.Doe+Ads@Example.CO.UK ', null, 'jane.doe+ads@example.co.uk'),
        ('email', 'jane@localhost', null, null),
        ('email', 'a@b@c.com', null, null),
        ('dob', '1990-2-3', null, '19900203'),
        ('dob', '02/30/1990', null, null),
        ('dob', '31.12.1999', null, '19991231'),
        ('gender', 'FEMALE', null, 'f'),
        ('gender', 'Man', null, 'm'),
        ('gender', 'other', null, null),
        ('name', '  Zoë-Anne  ', null, 'zoëanne'),
        ('city', 'Saint-Étienne', null, 'saintétienne')
    ) as literal_cases (field, raw_value, country, expected)
),

normalized as (
    select
        field,
        raw_value,
        country,
        expected,
        case field
            when 'phone' then {{ meta_normalize_phone('raw_value', 'country') }}
            when 'zip' then {{ meta_normalize_zip('raw_value', 'country') }}
            when 'country' then {{ meta_normalize_country('raw_value') }}
            when 'state' then {{ meta_normalize_state('raw_value') }}
            when 'email' then {{ meta_normalize_email('raw_value') }}
            when 'dob' then {{ meta_normalize_dob('raw_value') }}
            when 'gender' then {{ meta_normalize_gender('raw_value') }}
            when 'name' then {{ meta_normalize_name('raw_value') }}
            when 'city' then {{ meta_normalize_city('raw_value') }}
        end as actual
    from cases
),

hashing as (
    -- meta_sha256: lower-case hex of the UTF-8 bytes; a 64-hex value passes through lower-cased.
    select
        'sha256' as field,
        'abc' as raw_value,
        cast(null as {{ dbt.type_string() }}) as country,
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' as expected,
        {{ meta_sha256("'abc'") }} as actual

    union all

    select
        'sha256' as field,
        'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD' as raw_value,
        cast(null as {{ dbt.type_string() }}) as country,
        'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' as expected,
        {{ meta_sha256("'BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD'") }} as actual
),

final as (
    select *
    from normalized
    where
        actual <> expected
        or (actual is null and expected is not null)
        or (actual is not null and expected is null)

    union all

    select *
    from hashing
    where actual <> expected
)

select * from final
