"""prviz: daily precision-recall curves from SageMaker Data Capture, as a Dagster code location."""
