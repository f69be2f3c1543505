"""Engines other than DuckDB: PostgreSQL (dbt target `postgres`) and Spark (`spark`, `spark_session`).

* ``load``: what `convopt load-target` shares across engines (targets, the raw tables and their
  contract columns, reading them from the DuckDB warehouse, the profile's connection settings,
  the report), and :func:`~pipelines.engines.load.load_target`, which picks the engine module;
* ``postgres`` and ``spark``: one module per engine with the same shape: how to connect from the
  dbt profile, how to copy the raw tables, and the DuckDB → engine type mapping;
* ``servers``: throwaway servers on loopback for tests, CI, benchmarks and trials
  (``python -m pipelines.engines.servers postgres|spark start|status|stop``).

See docs/engines.md.
"""
