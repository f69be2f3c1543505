{#-
    The person_id the warehouse gives a visitor known only by an anonymous id, until an identity
    observation links the id to a person: `anon:` followed by the anonymous id. The prefix is reserved
    at ingest (no landed person_id starts with it) and anonymous ids are at most 123 characters, so the
    result is at most 128 characters and never equals a real person's id (pipelines/contract.py,
    PSEUDO_PERSON_PREFIX).
-#}
{% macro pseudo_person_id(anonymous_id) -%}
    {{ dbt.concat(["'anon:'", anonymous_id]) }}
{%- endmacro %}
