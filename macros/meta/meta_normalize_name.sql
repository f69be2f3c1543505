{#-
    Meta `fn` / `ln`: lower-case, no punctuation. We keep letters only (any script, accents kept
    as UTF-8 after NFC normalization: `Éloïse` → `éloïse`) and drop everything else, spaces,
    hyphens, apostrophes and digits included (`Mary-Ann O'Neil` → `maryannoneil`), so the written
    variants of one name hash alike. Null when no letter is left.
-#}
{% macro meta_normalize_name(expression) -%}
    nullif({{ meta_letters_only(meta_clean_lower(expression)) }}, '')
{%- endmacro %}
