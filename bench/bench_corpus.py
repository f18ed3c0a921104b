"""Issue 16: near-duplicates, topics and "more like this", against sentence-transformers and plain k-means.

    PYTHONPATH=src python bench/corpus_data.py          # encode the corpora once (cached)
    PYTHONPATH=src python bench/bench_corpus.py         # all sections
                                                        # or --only dup5k,dup100k,topics,topics100k,level,similar

Every timed method runs in its own process (``--worker``, one thread: OMP_NUM_THREADS=1 for
FAISS and torch alike), after loading its data and importing its libraries; its peak memory is
the growth of the process's RSS during the call (sampled every 5 ms), its time the wall clock
of the call. Medians of ``--repeat`` runs.
Results go to bench/out/corpus.json and are summarised on stdout.

Ground truth for duplicates: a pair of passages is a near-duplicate when their texts are
(casefolded, punctuation removed, word 3-shingles) Jaccard >= 0.5, a lexical definition that
does not depend on any embedding; the planted copies all meet it, and so do the many
near-identical passages msmarco already holds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))


# -- data ------------------------------------------------------------------------------
def dup5k() -> tuple[np.ndarray, dict]:
    from corpus_data import encode, msmarco_with_copies

    d = msmarco_with_copies()
    return encode(d["texts"], "msmarco_copies"), d


def dup100k(n: int = 100_000, seed: int = 0) -> tuple[np.ndarray, str]:
    """Real 104k MiniLM set when bench/ann_data.py has cached it, else real 7.4k + clustered synthetic + 5% noisy
    copies."""
    from ann_data import clustered, real_embeddings

    real = real_embeddings(110_000)
    if real is not None:
        return real[0][:n], "real: bench/ann_data.py's 110k MiniLM set (first 100k)"
    from corpus_data import encode, msmarco_with_copies, stdlib_families

    base = [encode(msmarco_with_copies()["texts"], "msmarco_copies"),
            encode(stdlib_families()["texts"], "stdlib_families")]
    have = sum(len(b) for b in base)
    rng = np.random.default_rng(seed)
    synth = clustered(n - have - (n - have) // 20, seed=seed)
    picked = synth[rng.choice(len(synth), (n - have) // 20, replace=False)]  # drawn before the shift, as before
    copies = picked + 0.015 * rng.normal(size=(1, 384)).astype(np.float32)
    copies += 0.015 * rng.normal(size=copies.shape).astype(np.float32)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    x = np.concatenate(base + [synth, copies]).astype(np.float32)
    return x[rng.permutation(len(x))], (f"{have:,} real MiniLM vectors (msmarco-5k + copies, stdlib) + {len(synth):,} "
                                        "clustered "
                                        f"synthetic (bench/ann_data.py) + {len(copies):,} noisy copies of those "
                                        "(cosine ~0.97)")


def normalised_words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", "", text.casefold()).split()


def lexical_truth(texts: list[str], jaccard: float = 0.5) -> set[tuple[int, int]]:
    """Pairs whose word 3-shingle sets have Jaccard >= ``jaccard`` (exact, through a sparse product)."""
    from scipy import sparse

    vocab: dict[tuple[str, ...], int] = {}
    rows, cols = [], []
    for i, t in enumerate(texts):
        w = normalised_words(t)
        shingles = {tuple(w[k : k + 3]) for k in range(max(1, len(w) - 2))}
        for s in shingles:
            rows.append(i)
            cols.append(vocab.setdefault(s, len(vocab)))
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    sizes = np.asarray(m.sum(axis=1)).ravel()
    inter = sparse.triu(m @ m.T, k=1).tocoo()
    jac = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    keep = jac >= jaccard
    return set(zip(inter.row[keep].tolist(), inter.col[keep].tolist()))


# -- the methods (each runs inside a worker process) ------------------------------------
def run_method(method: str, x: np.ndarray, threshold: float) -> dict:
    if method in ("ours-exact", "ours-ivf"):
        from semsearch.corpus.near_duplicates import near_duplicate_groups

        groups = near_duplicate_groups(x, threshold, exact=method == "ours-exact")
        return {"groups": [g.members.tolist() for g in groups],
                "edges": [(a, b) for g in groups for a, b, *_ in g.pairs]}
    if method == "paraphrase_mining":
        import torch
        from sentence_transformers import util

        pairs = util.paraphrase_mining_embeddings(torch.from_numpy(x))
        return {"edges": [(min(i, j), max(i, j)) for s, i, j in pairs if s >= threshold]}
    if method == "community_detection":
        import torch
        from sentence_transformers import util

        groups = util.community_detection(torch.from_numpy(x), threshold=threshold, min_community_size=2)
        return {"groups": [sorted(g) for g in groups]}
    raise ValueError(method)


def worker(method: str, data: str, threshold: float) -> None:
    x = np.load(data)
    if method.startswith("ours"):
        import faiss  # noqa: F401
        import scipy.sparse.csgraph  # noqa: F401
    else:
        import torch  # noqa: F401
        from sentence_transformers import util  # noqa: F401
    import threading

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    # Sampled RSS (every 5 ms) rather than ru_maxrss: loading and imports leave a peak of their
    # own that a method's growth may never exceed.
    base, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    result = run_method(method, x, threshold)
    result["seconds"] = time.perf_counter() - started
    done.set()
    sampler.join()
    result["peak_mb"] = (max(peak[0], rss()) - base) / 2**20
    sys.stdout.write(json.dumps(result))


def timed(method: str, x: np.ndarray, threshold: float, repeat: int) -> dict:
    OUT.mkdir(exist_ok=True)
    path = OUT / f"vectors_{len(x)}.npy"
    if not path.exists() or np.load(path, mmap_mode="r").shape != x.shape:
        np.save(path, x)
    runs = []
    for _ in range(repeat):
        # One thread each (FAISS and torch alike): the same resources for every method, and on a
        # shared machine OpenMP's spinning threads made FAISS calls 6x slower (measured).
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--worker", method, "--data", str(path), "--threshold",
                               str(threshold)],
                              capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        runs.append(json.loads(proc.stdout))
    out = dict(runs[0])
    out["seconds"] = statistics.median(r["seconds"] for r in runs)
    out["peak_mb"] = statistics.median(r["peak_mb"] for r in runs)
    out["runs"] = [round(r["seconds"], 3) for r in runs]
    return out


def pairs_of(result: dict) -> tuple[set, set]:
    """(edges, all pairs inside groups) of a method's result."""
    edges = {tuple(e) for e in result.get("edges", [])}
    inside = set()
    for g in result.get("groups", []):
        inside.update((a, b) for k, a in enumerate(g) for b in g[k + 1 :])
    return edges, inside or edges


def pr(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {"pairs": len(found), "precision": round(tp / max(len(found), 1), 4),
            "recall": round(tp / max(len(truth), 1), 4)}


# -- sections ---------------------------------------------------------------------------
def section_dup5k(repeat: int) -> dict:
    x, d = dup5k()
    truth = lexical_truth(d["texts"])
    planted = {tuple(sorted(p)) for p in d["truth"]}
    out = {"documents": len(x), "planted": len(planted), "truth_pairs": len(truth),
           "planted_in_truth": len(planted & truth), "thresholds": {}}
    for threshold in (0.9, 0.95):
        rows = {}
        for method in ("ours-exact", "ours-ivf", "paraphrase_mining", "community_detection"):
            r = timed(method, x, threshold, repeat)
            edges, inside = pairs_of(r)
            rows[method] = {"seconds": round(r["seconds"], 3), "peak_mb": round(r["peak_mb"], 1), "runs": r["runs"],
                            "edges": pr(edges, truth) if r.get("edges") else None, "groups": pr(inside, truth),
                            "planted_recall": round(len(inside & planted) / len(planted), 4)}
            if method == "ours-exact":
                rows[method]["planted_recall_by_edit"] = {
                    kind: round(np.mean([tuple(sorted(p)) in inside
                                         for p, k in zip(d["truth"], d["edits"]) if k == kind]), 4)
                    for kind in sorted(set(d["edits"]))}
            print(f"dup5k T={threshold} {method}: {rows[method]}", flush=True)
        out["thresholds"][str(threshold)] = rows
    return out


def section_dup100k(repeat: int) -> dict:
    x, what = dup100k()
    out = {"documents": len(x), "data": what, "threshold": 0.95, "methods": {}}
    results = {}
    for method in ("ours-ivf", "paraphrase_mining", "community_detection", "ours-exact"):
        r = timed(method, x, 0.95, repeat)
        results[method] = r
        out["methods"][method] = {"seconds": round(r["seconds"], 2), "peak_mb": round(r["peak_mb"], 1),
                                  "runs": r["runs"]}
        print(f"dup100k {method}: {out['methods'][method]}", flush=True)
    exact_edges, exact_inside = pairs_of(results["ours-exact"])
    ivf_edges, ivf_inside = pairs_of(results["ours-ivf"])
    out["ivf_recall_of_exact_pairs"] = round(len(ivf_edges & exact_edges) / max(len(exact_edges), 1), 4)
    pm_edges, _ = pairs_of(results["paraphrase_mining"])
    out["paraphrase_mining_recall_of_exact_pairs"] = round(len(pm_edges & exact_edges) / max(len(exact_edges), 1), 4)
    _, cd_inside = pairs_of(results["community_detection"])
    out["community_detection_group_pairs"] = len(cd_inside)
    out["ours_group_pairs"] = len(exact_inside)
    return out


def section_topics(repeat: int) -> dict:
    import faiss
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    from corpus_data import encode, stdlib_families
    from semsearch.corpus.topic_model import choose_topic_count, find_topics

    s = stdlib_families()
    x, y = encode(s["texts"], "stdlib_families"), s["labels"]
    true_k = len(s["families"])
    out: dict = {"documents": len(x), "families": s["families"], "methods": {}}

    def score(name: str, labels: np.ndarray, seconds: float, k: int) -> None:
        out["methods"][name] = {"k": int(k), "nmi": round(normalized_mutual_info_score(y, labels), 4),
                                "ari": round(adjusted_rand_score(y, labels), 4), "seconds": round(seconds, 3)}
        print(f"topics {name}: {out['methods'][name]}", flush=True)

    def labels_of(topics, ids) -> np.ndarray:
        where = {i: t.id for t in topics for i in t.ids}
        return np.array([where[i] for i in ids])

    for name, n in (("ours (count chosen)", None), (f"ours (n={true_k})", true_k)):
        times, found = [], None
        for _ in range(repeat):
            started = time.perf_counter()
            found = find_topics(s["ids"], x, s["texts"], n)
            times.append(time.perf_counter() - started)
        score(name, labels_of(found, s["ids"]), statistics.median(times), len(found))
        out["methods"][name]["labels"] = [t.label for t in found]
    out["silhouettes"] = {int(k): round(v, 4) for k, v in choose_topic_count(x)[1].items()}
    started = time.perf_counter()
    km = faiss.Kmeans(x.shape[1], true_k, niter=25, seed=1234)
    km.train(x)
    plain = km.index.search(x, 1)[1][:, 0]
    score(f"plain faiss k-means (n={true_k})", plain, time.perf_counter() - started, true_k)
    started = time.perf_counter()
    sk = KMeans(true_k, random_state=0, n_init="auto").fit(x)
    score(f"sklearn KMeans (n={true_k})", sk.labels_, time.perf_counter() - started, true_k)

    return out


def section_topics100k() -> dict:
    """Time of topics at 100k vectors (real texts, the corpora's, cycled, for the labels) against plain k-means."""
    import faiss

    from corpus_data import msmarco_with_copies, stdlib_families
    from semsearch.corpus.topic_model import find_topics

    s = stdlib_families()
    big, what = dup100k()
    texts = msmarco_with_copies()["texts"] + s["texts"]
    texts = [texts[i % len(texts)] for i in range(len(big))]
    ids = [str(i) for i in range(len(big))]
    at100k = {"data": what}
    for name, n in (("ours (n=50)", 50), ("ours (count chosen)", None)):
        started = time.perf_counter()
        found = find_topics(ids, big, texts, n)
        at100k[name] = {"seconds": round(time.perf_counter() - started, 2), "k": len(found)}
        print(f"topics 100k {name}: {at100k[name]}", flush=True)
    started = time.perf_counter()
    km = faiss.Kmeans(big.shape[1], 50, niter=25, seed=1234)
    km.train(big)
    km.index.search(big, 1)
    at100k["plain faiss k-means (n=50)"] = {"seconds": round(time.perf_counter() - started, 2), "k": 50}
    print(f"topics 100k plain: {at100k['plain faiss k-means (n=50)']}", flush=True)
    return at100k


def section_level() -> dict:
    """Whole-document (mean vector) vs best chunk pair, on documents made of several real passages."""
    from corpus_data import encode, stdlib_families
    from semsearch.corpus.near_duplicates import near_duplicate_groups
    from semsearch.corpus.vectors import mean_document_vectors

    x, d = dup5k()
    rng = np.random.default_rng(7)
    originals = [a for a, _ in d["truth"]]
    copy_of = dict(d["truth"])
    rng.shuffle(originals)
    triples = [originals[k : k + 3] for k in range(0, 3 * (len(originals) // 3), 3)]
    others = [i for i in range(5000) if i not in copy_of]
    docs, kinds = [], []
    for t in triples:
        docs.append(t)  # a document of three passages
        docs.append([copy_of[p] for p in t])  # its near-duplicate: the same three passages, edited
        docs.append([t[0]] + rng.choice(others, 2, replace=False).tolist())  # shares only its first passage
        kinds += ["orig", "dup", "shares"]
    owner = np.repeat(np.arange(len(docs)), 3)
    chunks = x[np.concatenate(docs)]
    out: dict = {"documents": len(docs), "triples": len(triples), "threshold": 0.95}
    truth = {(k, k + 1) for k in range(0, len(docs), 3)}
    shares = {(k, k + 2) for k in range(0, len(docs), 3)}
    for name, groups in (
        ("mean vector", near_duplicate_groups(mean_document_vectors(chunks, owner, len(docs)), 0.95, exact=True)),
        ("best chunk pair", near_duplicate_groups(chunks, 0.95, exact=True, owner=owner, n_documents=len(docs))),
    ):
        _, inside = pairs_of({"groups": [g.members.tolist() for g in groups]})
        out[name] = {"duplicate_recall": round(len(inside & truth) / len(truth), 4),
                     "shared_passage_flagged": round(len(inside & shares) / len(shares), 4),
                     "precision": pr(inside, truth)["precision"]}
        print(f"level {name}: {out[name]}", flush=True)

    # More like this: documents of three docstrings of one stdlib family; P@10 = same family.
    s = stdlib_families()
    v, y = encode(s["texts"], "stdlib_families"), s["labels"]
    members = []
    for fam in range(len(s["families"])):
        idx = rng.permutation(np.flatnonzero(y == fam))
        members += [idx[k : k + 3].tolist() for k in range(0, 3 * (len(idx) // 3), 3)]
    fam_of = np.array([y[m[0]] for m in members])
    owner = np.repeat(np.arange(len(members)), 3)
    chunks = v[np.concatenate(members)]
    means = mean_document_vectors(chunks, owner, len(members))
    by_mean = means @ means.T
    chunk_sims = chunks @ chunks.T
    best = np.full((len(members), len(members)), -1.0, dtype=np.float32)
    for a in range(3):
        for b in range(3):
            best = np.maximum(best, chunk_sims[a::3][:, b::3])
    for name, sims in (("mean vector", by_mean), ("best chunk pair", best)):
        sims = sims.copy()
        np.fill_diagonal(sims, -np.inf)
        top = np.argsort(-sims, axis=1)[:, :10]
        out[f"similar P@10 ({name})"] = round(float((fam_of[top] == fam_of[:, None]).mean()), 4)
        print(f"level similar {name}: {out[f'similar P@10 ({name})']}", flush=True)
    return out


def section_similar(repeat: int) -> dict:
    """similar() per call on a 5k local collection, against a plain vector search; and the CLI end to end."""
    import shutil
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semsearch import Collection
    from semsearch.corpus import similar

    x, d = dup5k()
    folder = Path(tempfile.mkdtemp(prefix="bench-similar-")) / "col"
    out: dict = {}
    try:
        with Collection(folder) as col:
            for k in range(0, len(x), 1000):
                col.add(d["texts"][k : k + 1000], ids=d["ids"][k : k + 1000], embeddings=x[k : k + 1000])
            col.flush()
            ids = d["ids"][:: max(1, len(x) // 200)][:200]
            col.search(x[0], k=10)  # load the index
            def per_call(fn) -> float:
                times = []
                for i in ids:
                    started = time.perf_counter()
                    fn(i)
                    times.append(time.perf_counter() - started)
                return statistics.median(times) * 1000
            position = {i: n for n, i in enumerate(d["ids"])}
            out["similar_ms"] = round(per_call(lambda i: similar(col, i, k=10)), 3)
            out["vector_search_ms"] = round(per_call(lambda i: col.search(x[position[i]], k=11)), 3)
            out["ratio"] = round(out["similar_ms"] / out["vector_search_ms"], 2)
            print(f"similar per call: {out}", flush=True)
        env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
        cli = [sys.executable, "-m", "semsearch.cli"]
        for name, args in (("similar", ["similar", d["ids"][3], "--json"]),
                           ("search (encodes the query)", ["search", d["texts"][3][:80], "--json"]),
                           ("duplicates", ["duplicates", "--json"]),
                           ("topics", ["topics", "--json"])):
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                proc = subprocess.run(cli + args + ["--collection", str(folder)], capture_output=True, text=True,
                                      env=env)
                times.append(time.perf_counter() - started)
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr[-2000:])
            out[f"cli {name} s"] = round(statistics.median(times), 2)
            print(f"cli {name}: {times}", flush=True)
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="dup5k,level,topics,similar,dup100k,topics100k")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--repeat-100k", type=int, default=1)
    ap.add_argument("--worker")
    ap.add_argument("--data")
    ap.add_argument("--threshold", type=float, default=0.95)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.threshold)
        return
    OUT.mkdir(exist_ok=True)
    path = OUT / "corpus.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    for name in args.only.split(","):
        started = time.perf_counter()
        if name == "dup5k":
            results[name] = section_dup5k(args.repeat)
        elif name == "dup100k":
            results[name] = section_dup100k(args.repeat_100k)
        elif name == "topics":
            results[name] = section_topics(args.repeat)
        elif name == "topics100k":
            results[name] = section_topics100k()
        elif name == "level":
            results[name] = section_level()
        elif name == "similar":
            results[name] = section_similar(args.repeat)
        results[name]["section_seconds"] = round(time.perf_counter() - started, 1)
        path.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
