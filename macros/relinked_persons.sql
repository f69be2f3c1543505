{#-
    A subquery (for `person_id in (...)`) of the persons whose rows a relink may have changed since
    `since` (a timestamp expression, the caller's watermark): for every anonymous id whose current link
    landed after it and that belonged to, or was observed with, another person before
    (int_identity_previous_persons), the persons it was moved away from and the person it belongs to now.
-#}
{% macro relinked_persons(since) -%}
    select relinks.previous_person_id
    from {{ ref('int_identity_previous_persons') }} as relinks
    where relinks.relinked_loaded_at > {{ since }}
    union
    select relinks.person_id
    from {{ ref('int_identity_previous_persons') }} as relinks
    where relinks.relinked_loaded_at > {{ since }}
{%- endmacro %}

{#-
    A query of one row per person an anonymous id was relinked away from (int_identity_previous_persons):
    `person_id` and `relinked_loaded_at`, the load of the latest such relink. The deduplicated events and
    conversions move such a person's `last_loaded_at` to it, so every model downstream recomputes them.
-#}
{% macro latest_relink_away_by_person() -%}
    select
        relinks.previous_person_id as person_id,
        max(relinks.relinked_loaded_at) as relinked_loaded_at
    from {{ ref('int_identity_previous_persons') }} as relinks
    group by relinks.previous_person_id
{%- endmacro %}
