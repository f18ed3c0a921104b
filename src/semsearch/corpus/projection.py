"""A 2-D map of document vectors, and a picture of it coloured by topic.

The projection is UMAP when ``umap-learn`` is installed, else openTSNE when ``openTSNE`` is
(``pip install 'semsearch[explore]'``), else PCA (numpy, always there): neighbourhoods survive
UMAP and t-SNE far better than PCA, which only keeps the two widest directions. All three are
seeded, so a map is the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .vectors import unit_rows

METHODS = ("auto", "umap", "tsne", "pca")


def available_method() -> str:
    """What ``method="auto"`` uses here: umap, tsne or pca."""
    import importlib.util

    if importlib.util.find_spec("umap") is not None:
        return "umap"
    if importlib.util.find_spec("openTSNE") is not None:
        return "tsne"
    return "pca"


def project_2d(vectors: np.ndarray, method: str = "auto", *, seed: int = 0) -> tuple[np.ndarray, str]:
    """(n x 2 coordinates, the method used) for unit ``vectors``.

    Raises:
        InvalidInputError: an unknown method.
        ImportError: ``umap`` or ``tsne`` asked for but not installed (the message says what to install).
    """
    if method not in METHODS:
        raise InvalidInputError(f"projection method must be one of {', '.join(METHODS)}, got {method!r}")
    x = unit_rows(vectors)
    if method == "auto":
        method = available_method()
    if len(x) < 5:  # too few points for a neighbourhood method
        method = "pca"
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise ImportError("method='umap' needs umap-learn: pip install umap-learn") from exc
        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(x) - 1))
        return np.asarray(reducer.fit_transform(x), dtype=np.float32), "umap"
    if method == "tsne":
        try:
            from openTSNE import TSNE
        except ImportError as exc:
            raise ImportError("method='tsne' needs openTSNE: pip install 'semsearch[explore]'") from exc
        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        # Threads only pay off on large maps; on a busy machine they cost 100x on small ones (measured).
        emb = TSNE(n_components=2, perplexity=perplexity, metric="cosine", random_state=seed,
                   n_jobs=-1 if len(x) >= 10_000 else 1, verbose=False).fit(x)
        return np.asarray(emb, dtype=np.float32), "tsne"
    return pca_2d(x), "pca"


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components (signs fixed so the result is deterministic)."""
    centred = x - x.mean(axis=0, keepdims=True)
    cov = centred.T @ centred
    _, vecs = np.linalg.eigh(cov.astype(np.float64))
    axes = vecs[:, ::-1][:, :2]
    axes *= np.sign(axes[np.argmax(np.abs(axes), axis=0), [0, 1]])
    out = centred @ axes.astype(np.float32)
    if out.shape[1] < 2:
        out = np.hstack([out, np.zeros((len(out), 2 - out.shape[1]), dtype=np.float32)])
    return out.astype(np.float32)


def plot_map(
    coords: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    path: str | Path,
    *,
    title: str = "Topics",
) -> Path:
    """Draw the 2-D map, each point coloured by its topic and each topic named at its centre; returns the file.

    Raises:
        ImportError: matplotlib is not installed (``pip install 'semsearch[explore]'``).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'semsearch[explore]'") from exc
    path = Path(path)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(10, 8), dpi=120)
    cmap = plt.get_cmap("tab20")
    size = max(2.0, min(20.0, 4000.0 / max(len(coords), 1)))
    for t in range(len(names)):
        pts = coords[labels == t]
        if not len(pts):
            continue
        colour = cmap(t % 20)
        ax.scatter(pts[:, 0], pts[:, 1], s=size, color=colour, alpha=0.6, linewidths=0)
        cx, cy = np.median(pts, axis=0)
        ax.annotate(f"{t}: {names[t]}", (cx, cy), fontsize=8, ha="center",
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour, "alpha": 0.85})
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
