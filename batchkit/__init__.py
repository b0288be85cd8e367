"""batchkit: run very large LLM generation jobs as rerunnable phases.

prepare renders requests into DuckDB, execute sends them and logs every attempt
to Parquet, load validates the results and bulk-loads them into Supabase.
"""

__version__ = "0.1.0"
