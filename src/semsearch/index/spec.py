"""Index specs: FAISS ``index_factory`` strings, "binary", and "auto", parsed and checked.

A spec names how vectors are indexed. Users who know FAISS write its factory strings
("Flat", "IVF4096,Flat", "IVF4096,PQ48", "HNSW32", "HNSW32,SQ8", "SQ8", "PQ48", ...);
"int8" is an alias of "SQ8"; a leading "PCA<n>," ("PCA128,Flat", "PCA128,IVF4096,Flat") projects
vectors to their n principal components first (trained like IVF centroids, on the collection's
own vectors); "binary" and "binary,SQ8" are sentence-transformers style
binary quantization with rescoring; "auto" (optionally "auto:2GB", a memory budget for the
index) lets semsearch choose and tune from the collection's size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInputError

# FAISS warns below 39 training points per centroid; we never train with fewer.
MIN_POINTS_PER_CENTROID = 39
PQ_CENTROIDS = 256

ALIASES = {"int8": "SQ8", "exact": "Flat", "bin": "binary", "binary,int8": "binary,SQ8"}

_IVF = re.compile(r"(?:^|,)IVF(\d+)(?:_\w+)?(?:,|$)")
_HNSW = re.compile(r"^HNSW(\d+)(?:,|$)")
_PQ = re.compile(r"(?:^|,)(?:IVF\d+(?:_\w+)?,)?PQ(\d+)(?:x(\d+))?(?:np)?(?:,|$)")
_PCA = re.compile(r"^PCAW?R?(\d+),")
#: A PCA projection trains on at least this many vectors per output dimension: a covariance
#: estimated from fewer is mostly noise (and FAISS needs at least one per dimension).
PCA_POINTS_PER_DIMENSION = 4


def reduced_dimension(text: str) -> int:
    """The dimension a spec's leading PCA projection keeps ("PCA128,Flat" -> 128), 0 without one."""
    m = _PCA.match(ALIASES.get(text.strip(), text.strip()) if isinstance(text, str) else "")
    return int(m.group(1)) if m else 0


@dataclass(frozen=True)
class IndexSpec:
    """A parsed spec.

    ``kind`` is one of "flat" (exhaustive: Flat, SQ8, PQ48...), "ivf", "hnsw", "binary",
    "auto". ``min_train`` is how many vectors training needs (0: no training, 1: training
    that works on any sample, such as scalar quantizer ranges).
    """

    text: str
    kind: str
    nlist: int = 0
    hnsw_m: int = 0
    min_train: int = 0
    memory_budget: int | None = None  # bytes, auto only

    @property
    def search_param(self) -> str | None:
        """The knob tuning turns: nprobe (IVF), efSearch (HNSW), oversample (binary)."""
        return {"ivf": "nprobe", "hnsw": "efSearch", "binary": "oversample"}.get(self.kind)


def parse_spec(text: str, dim: int | None = None) -> IndexSpec:
    """Parse and check an index spec (for vectors of ``dim``, when known).

    Raises:
        InvalidInputError: not a spec semsearch can build, naming a fix.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"index spec {text!r} is empty; use 'auto', 'Flat', 'IVF1024,Flat', 'HNSW32', ...")
    spec = ALIASES.get(text.strip(), text.strip())
    if spec == "auto" or spec.startswith("auto:"):
        budget = None
        if spec.startswith("auto:"):
            budget = parse_bytes(spec[5:])
        return IndexSpec(spec, "auto", memory_budget=budget)
    if spec in ("binary", "binary,SQ8"):
        return IndexSpec(spec, "binary")
    if spec.startswith(("IDMap", "BFlat", "BIVF", "BHNSW")):
        raise InvalidInputError(
            f"index spec {spec!r}: semsearch adds the id map itself and spells binary indexes 'binary'; "
            "drop the IDMap prefix or use 'binary'"
        )
    import faiss

    if dim is not None:
        check_dimension(IndexSpec(spec, "flat"), dim)
    try:
        # 3840 is divisible by every usual PQ m, so a spec is checked even before the dimension is known.
        probe = faiss.index_factory(dim or 3840, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unknown"
        raise InvalidInputError(
            f"index spec {spec!r} is not a FAISS index_factory string ({first}); "
            "use e.g. 'Flat', 'IVF1024,Flat', 'IVF1024,PQ48', 'HNSW32', 'SQ8', 'binary' or 'auto'"
        ) from None
    min_train = 1 if not probe.is_trained else 0
    min_train = max(min_train, PCA_POINTS_PER_DIMENSION * reduced_dimension(spec))
    m_ivf = _IVF.search(spec)
    m_pq = _PQ.search(spec)
    if m_pq:
        bits = int(m_pq.group(2) or 8)
        min_train = max(min_train, MIN_POINTS_PER_CENTROID * (1 << bits))
    if m_ivf:
        nlist = int(m_ivf.group(1))
        return IndexSpec(spec, "ivf", nlist=nlist, min_train=max(min_train, MIN_POINTS_PER_CENTROID * nlist))
    m_hnsw = _HNSW.match(spec)
    if m_hnsw:
        return IndexSpec(spec, "hnsw", hnsw_m=int(m_hnsw.group(1)), min_train=min_train)
    if "HNSW" in spec and reduced_dimension(spec):
        pca = f"PCA{reduced_dimension(spec)}"
        raise InvalidInputError(
            f"index spec {spec!r}: a graph over PCA-projected vectors is not supported; use "
            f"'{pca},Flat' or '{pca},IVF<n>,Flat', or HNSW on the full vectors"
        )
    if "HNSW" in spec or "IVF" in spec:
        raise InvalidInputError(f"index spec {spec!r} is not supported; put HNSW or IVF first, e.g. 'HNSW32,SQ8'")
    return IndexSpec(spec, "flat", min_train=min_train)


def check_dimension(spec: IndexSpec, dim: int) -> None:
    """Reject a spec the dimension cannot take (PQ m must divide it, binary needs multiples of 8,
    PCA must keep fewer dimensions than there are)."""
    reduced = reduced_dimension(spec.text)
    if reduced and reduced >= dim:
        raise InvalidInputError(
            f"index spec {spec.text!r}: PCA{reduced} keeps {reduced} dimensions of vectors that have {dim}; "
            f"use fewer (e.g. PCA{max(8, dim // 2)}) or no PCA"
        )
    dim = reduced or dim  # a quantizer after the projection codes the projected vectors
    m_pq = _PQ.search(spec.text)
    if m_pq and dim % int(m_pq.group(1)):
        m = int(m_pq.group(1))
        ok = [d for d in range(1, dim + 1) if dim % d == 0 and d <= max(m, 8)]
        raise InvalidInputError(
            f"index spec {spec.text!r}: PQ{m} needs the dimension ({dim}) to be a multiple of {m}; use PQ{ok[-1]}"
        )
    if spec.kind == "binary" and dim % 8:
        raise InvalidInputError(f"binary quantization needs a dimension divisible by 8, this collection has {dim}")


def parse_bytes(text: str) -> int:
    """'2GB', '512MB', '100000' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if not m:
        raise InvalidInputError(f"memory budget {text!r} is not a size; write e.g. 'auto:2GB' or 'auto:512MB'")
    unit = (m.group(2) or "").upper().replace("I", "").rstrip("B")
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
    return int(float(m.group(1)) * scale)
