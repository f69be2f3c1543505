-- Monthly conversion rollup (calendar months, reporting time zone): additive measures summed from
-- conversion_rollup_daily, distinct persons counted from the conversions (macros/conversion_rollup.sql).
{{ conversion_rollup_from_daily('monthly', 'month') }}
