from __future__ import annotations

import faiss
import pytest


@pytest.fixture(autouse=True, scope="package")
def _one_faiss_thread():
    # Small indexes gain nothing from OpenMP, and on a loaded CI machine its threads spin.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
