{#-
    Trimmed text, with empty strings turned into null. Producers send '' and null interchangeably
    (CSV cannot tell them apart), so staging treats both as "not provided". Trimming removes every
    leading and trailing whitespace character (`trim_whitespace`), not only spaces: a value pasted
    with a tab, a line break or a non-breaking space is the same value.
-#}
{% macro clean_string(column_name) -%}
    nullif({{ trim_whitespace(column_name) }}, '')
{%- endmacro %}

{#- The same, lower-cased: for enumerations and case-insensitive codes. -#}
{% macro clean_lower(column_name) -%}
    lower({{ clean_string(column_name) }})
{%- endmacro %}

{#-
    The text without leading and trailing whitespace: the characters Python's str.strip() removes
    (tab, line feed, vertical tab, form feed, carriage return, the separators U+001C-U+001F, space,
    next line U+0085, no-break space U+00A0, and the Unicode space separators U+1680, U+2000-U+200A,
    U+2028, U+2029, U+202F, U+205F, U+3000). SQL's one-argument trim() removes spaces only.
    Null in, null out. Dispatched: the default is trim(text, characters), which DuckDB and
    PostgreSQL both accept.
-#}
{% macro trim_whitespace(expression) -%}
    {{ return(adapter.dispatch('trim_whitespace')(expression)) }}
{%- endmacro %}

{#-
    Most values have no whitespace at either end: when both end characters are printable ASCII
    other than space, the value is returned as is, skipping trim(text, characters), which costs
    about ten times a plain trim() per value on DuckDB (benchmarks/meta_payloads.py).
-#}
{% macro default__trim_whitespace(expression) -%}
    case
        when ascii({{ expression }}) between 33 and 126 and ascii(right({{ expression }}, 1)) between 33 and 126
            then {{ expression }}
        else trim({{ expression }}, {{ whitespace_characters() }})
    end
{%- endmacro %}

{#-
    DuckDB: the same result, faster. The last character is read with `text[-1]` (`right(text, 1)`
    costs about 5× more on long values), and a value that needs trimming is trimmed with two anchored
    regular expressions, about 10× faster than trim(text, characters) here. The class is exactly the
    29 characters above: the ASCII controls U+0009-U+000D and U+001C-U+001F, U+0085, and \p{Z}
    (U+0020, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000); checked equal to
    trim(text, characters) on every code point (benchmarks/meta_payloads.py, BENCHMARKS.md).
-#}
{% macro duckdb__trim_whitespace(expression) -%}
    case
        when ascii({{ expression }}) between 33 and 126 and ascii(({{ expression }})[-1]) between 33 and 126
            then {{ expression }}
        else regexp_replace(
            regexp_replace({{ expression }}, '^[\x{09}-\x{0d}\x{1c}-\x{1f}\x{85}\p{Z}]+', ''),
            '[\x{09}-\x{0d}\x{1c}-\x{1f}\x{85}\p{Z}]+$',
            ''
        )
    end
{%- endmacro %}

{#- SQL text expression of the whitespace characters `trim_whitespace` removes (chr() of each code point). -#}
{% macro whitespace_characters() -%}
    {%- set code_points = [9, 10, 11, 12, 13, 28, 29, 30, 31, 32, 133, 160, 5760]
        + range(8192, 8203) | list + [8232, 8233, 8239, 8287, 12288] -%}
    ({% for code_point in code_points %}chr({{ code_point }}){% if not loop.last %} || {% endif %}{% endfor %})
{%- endmacro %}
