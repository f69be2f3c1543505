"""Throwaway servers on loopback for the engines other than DuckDB: tests, CI and benchmarks start
them, and so can anyone trying the `postgres` or `spark` dbt target on one machine.

    eval "$(python -m pipelines.engines.servers postgres start)"   # exports CONVOPT_PG_*
    python -m pipelines.engines.servers postgres status|stop
    eval "$(python -m pipelines.engines.servers spark start)"      # exports CONVOPT_SPARK_*
    python -m pipelines.engines.servers spark status|stop

``start`` prints ``export`` lines with the variables the dbt profile and ``convopt load-target``
read. PostgreSQL (:mod:`.postgres`) runs from the installed server binaries in a new temporary
directory, which ``stop`` removes. Spark (:mod:`.spark`, the script ``spark_cluster.sh``) runs from
the pyspark package with its state in ``$CONVOPT_SPARK_DIR``, which ``stop`` keeps.
"""
