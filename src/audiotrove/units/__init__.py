"""Units: cut recordings into short sounds, describe, store (Parquet + DuckDB), select, render."""
