"""Ranking after retrieval, the same for every backend: options, fusion, reranking, diversity,
and the pipeline that runs them. Each stage takes data and returns data."""
