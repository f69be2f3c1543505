{#-
    Meta `ge`: `f` or `m`. Accepts f/female/woman and m/male/man in any case, punctuation ignored
    (`F`, `Female`, ` male `, `M.`). Anything else (unknown, non-binary, empty) is null: Meta's
    field has only these two values.
-#}
{% macro meta_normalize_gender(expression) -%}
    case
        when {{ meta_letters_only(meta_clean_lower(expression)) }} in ('f', 'female', 'woman') then 'f'
        when {{ meta_letters_only(meta_clean_lower(expression)) }} in ('m', 'male', 'man') then 'm'
    end
{%- endmacro %}
