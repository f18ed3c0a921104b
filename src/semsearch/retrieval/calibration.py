"""Calibrated relevance (placeholder, filled in by the calibration study)."""

from __future__ import annotations

NO_MATCH_THRESHOLD = 0.5
