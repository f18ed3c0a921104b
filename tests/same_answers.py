"""Comparing two answers to the same question without depending on a tie or on a CPU's rounding.

The same search through two doors, two processes or two batch shapes gives the same hits, but
not always bit for bit: an encoder computes a batch of 4 with other blocking than a batch of 1
(torch fp32), and JSON carries floats through decimal text. Scores agree to a tolerance, and
hits whose scores are closer than :data:`TIE` may come in either order.
"""

from __future__ import annotations

import math
from typing import Any

#: Scores agree to this by default (JSON carries floats through decimal text).
SCORE_TOLERANCE = 1e-6
#: Scores closer than this are a tie: their order may differ between processes (FAISS rounding).
TIE = 1e-4


def differences(expected: Any, got: Any, where: str = "", k: int | None = None,
                tolerance: float = SCORE_TOLERANCE) -> list[str]:
    """What differs between two answers. Fields one side lacks are not compared (a door shows what
    it shows); floats agree to ``tolerance``; lists of hits are compared as :func:`hit_differences`."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return [d for key in sorted(expected.keys() & got.keys())
                for d in differences(expected[key], got[key], f"{where}.{key}", k, tolerance)]
    if isinstance(expected, list) and isinstance(got, list):
        if len(expected) != len(got):
            return [f"{where}: {len(expected)} items {_ids(expected)} vs {len(got)} {_ids(got)}"]
        if expected and all(isinstance(h, dict) and "score" in h and "id" in h for h in expected + got):
            return hit_differences(expected, got, where, cut=k is not None and len(expected) >= k, tolerance=tolerance)
        return [d for i, (a, b) in enumerate(zip(expected, got))
                for d in differences(a, b, f"{where}[{i}]", tolerance=tolerance)]
    if isinstance(expected, float) or isinstance(got, float):
        if isinstance(expected, (int, float)) and isinstance(got, (int, float)) and \
                math.isclose(expected, got, rel_tol=0, abs_tol=tolerance):
            return []
    elif expected == got:
        return []
    return [f"{where}: {expected!r} vs {got!r}"]


def hit_differences(expected: list[dict], got: list[dict], where: str, cut: bool,
                    tolerance: float = SCORE_TOLERANCE) -> list[str]:
    """Hits in order, except within runs of reference scores closer than TIE (compared as a set by id);
    the last run of a list that may have been ``cut`` at k only by score."""
    out: list[str] = []
    start = 0
    while start < len(expected):
        end = start + 1
        while end < len(expected) and expected[end - 1]["score"] - expected[end]["score"] <= TIE:
            end += 1
        ours, theirs = expected[start:end], got[start:end]
        if cut and end == len(expected):  # a hit left out at k may tie with these: scores only
            ours, theirs = [{"score": h["score"]} for h in ours], [{"score": h["score"]} for h in theirs]
        elif end - start > 1:
            ours, theirs = sorted(ours, key=lambda h: h["id"]), sorted(theirs, key=lambda h: h["id"])
        out += [d for i, (a, b) in enumerate(zip(ours, theirs))
                for d in differences(a, b, f"{where}[{start + i}]", tolerance=tolerance)]
        start = end
    return out


def _ids(items: list[Any]) -> list[Any]:
    return [i.get("id") if isinstance(i, dict) else i for i in items]
