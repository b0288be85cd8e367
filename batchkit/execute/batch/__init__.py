"""`execute --mode batch`: provider batch files through /v1/files and /v1/batches."""

from batchkit.execute.batch.run import execute_batch
from batchkit.execute.batch.summary import BatchReport, BatchSummary

__all__ = ["BatchReport", "BatchSummary", "execute_batch"]
