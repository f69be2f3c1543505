{#-
    A subquery (for `person_id in (...)`) of the persons whose rows a relink may have changed since
    `since` (a timestamp expression, the caller's watermark): for every anonymous id whose current link
    landed at or after it and that belonged to, or was observed with, another person before
    (int_identity_previous_persons), the persons it was moved away from and the person it belongs to now.
-#}
{% macro relinked_persons(since) -%}
    select relinks.previous_person_id
    from {{ ref('int_identity_previous_persons') }} as relinks
    where relinks.relinked_loaded_at >= {{ since }}
    union
    select relinks.person_id
    from {{ ref('int_identity_previous_persons') }} as relinks
    where relinks.relinked_loaded_at >= {{ since }}
{%- endmacro %}
