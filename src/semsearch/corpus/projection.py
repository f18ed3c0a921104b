"""A 2-D map of document vectors, and a picture of it coloured by topic (no two shown topics
share a colour; topic numbers are placed where they overlap no other, names are in a legend).

The projection is UMAP when ``umap-learn`` is installed, else openTSNE when ``openTSNE`` is
(``pip install 'semsearch[explore]'``), else PCA (numpy, always there): neighbourhoods survive
UMAP and t-SNE far better than PCA, which only keeps the two widest directions. All three are
seeded, so a map is the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def topic_colours(n: int) -> list[tuple[float, float, float]]:
    """``n`` different colours, one per topic: matplotlib's tab10 / tab20 while they suffice,
    else hues spread by the golden ratio at three lightness levels (never one colour twice)."""
    import colorsys

    if n <= 20:
        import matplotlib

        table = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
        return [tuple(float(v) for v in table(i)[:3]) for i in range(n)]  # type: ignore[misc]
    levels = ((0.85, 0.80), (0.65, 0.95), (0.95, 0.55))  # (saturation, value)
    colours = []
    for i in range(n):
        saturation, value = levels[i % len(levels)]
        colours.append(colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, saturation, value))
    return colours


def place_labels(ax: Any, anchors: Sequence[tuple[float, float]], texts: Sequence[str], *,
                 fontsize: float = 8, colours: Sequence[Any] | None = None) -> list[Any]:
    """Write each text near its anchor (data coordinates) where its box overlaps no text placed
    before it: at the anchor if free, else at the nearest free spot on rings around it (with a
    line to the anchor). Texts are placed in the order given (the most important first). Returns
    their boxes in display coordinates, in that order."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    points = ax.figure.dpi / 72.0  # display pixels per point
    # Offsets in points: the anchor, then rings 10 points apart with a spot every ~10 points.
    offsets = [(0.0, 0.0)] + [(r * np.cos(t), r * np.sin(t)) for r in range(10, 400, 10)
                              for t in np.linspace(0, 2 * np.pi, max(8, int(2 * np.pi * r / 10)), endpoint=False)]
    placed: list[Any] = []
    for k, ((x, y), text) in enumerate(zip(anchors, texts)):
        probe = ax.text(x, y, text, fontsize=fontsize, ha="center", va="center")
        box = probe.get_window_extent(renderer).padded(0.3 * fontsize * points)  # with the frame drawn around it
        probe.remove()
        cx, cy = ax.transData.transform((x, y))
        half_w, half_h = box.width / 2, box.height / 2
        chosen = (0.0, 0.0)
        for dx, dy in offsets:
            px, py = cx + dx * points, cy + dy * points
            candidate = Bbox([[px - half_w, py - half_h], [px + half_w, py + half_h]])
            if not any(candidate.overlaps(other) for other in placed):
                chosen = (dx, dy)
                break
        else:  # no free spot near it: keep it on its anchor rather than lose it
            candidate = Bbox([[cx - half_w, cy - half_h], [cx + half_w, cy + half_h]])
        edge = colours[k] if colours is not None else "0.4"
        ax.annotate(text, (x, y), xytext=chosen, textcoords="offset points", fontsize=fontsize, ha="center",
                    va="center", zorder=5, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": edge, "alpha": 0.9},
                    arrowprops=None if chosen == (0.0, 0.0) else {"arrowstyle": "-", "color": "0.5", "lw": 0.6})
        placed.append(candidate)
    return placed


def plot_map(
    coords: np.ndarray,
    labels: np.ndarray,
    names: Sequence[str],
    path: str | Path,
    *,
    title: str = "Topics",
) -> Path:
    """Draw the 2-D map: each point coloured by its topic (``labels``; -1 = no topic, grey), every
    topic in its own colour, its number written near its centre where it overlaps no other
    number, and a legend naming the topics (``names``). Returns the file.

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
    shown = [t for t in range(len(names)) if np.any(labels == t)]
    colours = dict(zip(shown, topic_colours(len(shown))))
    columns = 1 + len(shown) // 30
    fig, ax = plt.subplots(figsize=(10 + 3.5 * columns, 8), dpi=120)
    size = max(2.0, min(20.0, 4000.0 / max(len(coords), 1)))
    alone = coords[labels < 0]
    if len(alone):
        ax.scatter(alone[:, 0], alone[:, 1], s=size * 0.6, color="0.75", alpha=0.5, linewidths=0,
                   label=f"-1: no topic ({len(alone)})")
    centres = []
    for t in shown:
        pts = coords[labels == t]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, color=colours[t], alpha=0.65, linewidths=0, label=f"{t}: {names[t]}")
        centres.append(tuple(np.median(pts, axis=0)))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, markerscale=2.5, frameon=False,
              ncol=columns)
    fig.tight_layout()
    place_labels(ax, centres, [str(t) for t in shown], colours=[colours[t] for t in shown])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
