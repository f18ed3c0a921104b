"""The default "no good match" line, in a module of its own so a CLI answered by a running
server can print it without importing numpy and the calibration code (retrieval/calibration.py)."""

from __future__ import annotations

#: The default "no good match" threshold on the relevance score for the default model: a query
#: whose best hit scores below it is answered "nothing in the collection answers this".
NO_MATCH_THRESHOLD = 0.5
