"""Getting the validated raw tables into engines other than DuckDB (one module per engine)."""
