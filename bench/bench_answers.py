"""Answers a reader can check (issue 26): quality of the offline answer and `ask` latency, this tree vs another.

Quality, for each tree (its own collections: chunking differs between trees), on two sets:

* ``bench/titled``: eight Markdown documents written for this benchmark (manuals and essays,
  each with a title, a date line and sections), 28 questions with the document and a phrase
  of the passage that answers each, and 10 questions they do not answer;
* msmarco-5k (``../shared/data``, read in place): its 43 judged questions (relevant = grade >= 2,
  and >= 1) against the corpus, and the same questions against the corpus without any passage
  judged for them (unanswerable).

Per set: the share of answered questions whose answer is >= 120 characters without citation
marks and whose every cited sentence stands verbatim in the passage it cites (as given to the
model; on the other tree, its passage text with its own footnote rewriting), the share citing a
relevant passage, refusal precision and recall.

Latency (msmarco-5k, default options): a cold ``semsearch ask`` (new process, each question asked
once per tree, the two trees alternating), ``semsearch ask`` through a running ``semsearch serve``
(this tree), HTTP ``POST /ask`` warm, and the MCP ``ask`` tool (first call after start, then warm).

    PYTHONPATH=src .venv/bin/python bench/bench_answers.py --baseline /path/to/other/src [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TITLED = HERE / "titled"
SHARED = next((p for p in (HERE.parents[1] / "shared" / "data", HERE.parents[2] / "shared" / "data")
               if p.exists()), HERE.parents[1] / "shared" / "data")
MSMARCO = SHARED / "msmarco-5k"
CITATION = re.compile(r"\s*\[(\d+(?:,\s*\d+)*)\]")
LATENCY_QUESTIONS = [
    "how long to boil an egg", "what is the capital of the united states", "what causes a fever",
    "how many calories in a banana", "when was the eiffel tower built", "what is photosynthesis",
    "how to lower blood pressure", "what is a bond in finance", "how long do cats live",
    "what is the speed of sound", "why is the sky blue", "what is inflation",
    "what is a hurricane", "how does a vaccine work", "what is the largest ocean", "how to cook rice",
    "what is a credit score", "who wrote hamlet", "what is dna", "how far is the moon", "what is gdp",
    "how do airplanes fly", "what is a tsunami", "how many bones in the human body", "what is yoga",
    "what is an allergy", "how to make bread", "what is a volcano", "what causes rain", "what is a mortgage",
    "what is a glacier", "how do bees make honey", "what is the stock market", "how to treat a burn",
    "what is an earthquake", "how long is a marathon", "what is cholesterol", "who painted the mona lisa",
    "what is a calorie", "how does wifi work", "what is a comet", "how to plant tomatoes", "what is anemia",
]


# ---------------------------------------------------------------------------------------------
# Quality (runs inside one tree: ``quality`` subcommand)


def checkable(answer) -> tuple[bool, int]:
    """(every cited sentence stands verbatim in the passage it cites, characters without citation marks)."""
    given = {}
    for p in answer.passages:
        text = getattr(p, "given", None)
        given[p.n] = text if text is not None else re.sub(r"\[(\d{1,4})\]", r"(\1)", p.text)  # the old rewriting
    body = CITATION.sub("", answer.text).strip()
    ok = True
    last = 0
    for m in CITATION.finditer(answer.text):
        sentence = answer.text[last:m.start()].strip()
        last = m.end()
        numbers = [int(n) for n in m.group(1).split(",")]
        if not sentence or not all(n in given and sentence in given[n] for n in numbers):
            ok = False
    if answer.text[last:].strip():
        ok = False  # text after the last citation cites nothing
    return ok, len(body)


def run_set(col, questions: list[dict], relevant) -> dict:
    """``relevant(question, passage) -> bool``; a question with ``answerable`` False should be refused."""
    from semsearch.answer import ask

    rows = []
    for q in questions:
        answer = ask(col, q["question"])
        ok, length = checkable(answer) if answer.answered else (False, 0)
        by_n = {p.n: p for p in answer.passages}
        cited = [by_n[c.n] for c in answer.citations if c.n in by_n]
        rows.append({"answerable": q["answerable"], "answered": answer.answered, "verbatim": ok, "chars": length,
                     "relevant": any(relevant(q, p) for p in cited), "text": answer.text})
    answerable = [r for r in rows if r["answerable"]]
    answered = [r for r in rows if r["answered"]]
    refused = [r for r in rows if not r["answered"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    good = [r for r in answered if r["verbatim"] and r["chars"] >= 120]
    return {
        "questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "answered": len(answered),
        "checkable_share": len(good) / len(answered) if answered else 0.0,
        "verbatim_share": sum(r["verbatim"] for r in answered) / len(answered) if answered else 0.0,
        "long_share": sum(r["chars"] >= 120 for r in answered) / len(answered) if answered else 0.0,
        "relevant_share": sum(r["relevant"] for r in answerable) / len(answerable) if answerable else 0.0,
        "refusal_precision": (sum(not r["answerable"] for r in refused) / len(refused)) if refused else 1.0,
        "refusal_recall": (sum(not r["answered"] for r in unanswerable) / len(unanswerable)) if unanswerable else 1.0,
        "examples": [r["text"][:300] for r in answered[:3]],
    }


def quality(work: Path) -> dict:
    from semsearch import Collection

    out = {}
    titled = Collection(work / "titled", progress=False)
    if titled.count() == 0:
        titled.index_files([TITLED / "docs"])
    questions = [json.loads(line) for line in (TITLED / "questions.jsonl").read_text().splitlines() if line.strip()]
    for q in questions:
        q["answerable"] = q["doc"] is not None

    def titled_relevant(q, passage) -> bool:
        return (q["doc"] is not None and (passage.id == q["doc"] or passage.id.endswith("/" + q["doc"]))
                and q["answer"] in passage.text)

    out["titled"] = run_set(titled, questions, titled_relevant)
    titled.close()
    # The same documents as a JSONL export: one record per document, its title in a field (prepended to
    # the text by the loader) and its body as one long paragraph, as exports of essays often are.
    export = work / "titled-export.jsonl"
    if not export.exists():
        lines = []
        for path in sorted((TITLED / "docs").glob("*.md")):
            paragraphs = [p.strip() for p in path.read_text().split("\n\n") if p.strip()]
            title = paragraphs[0].lstrip("# ").strip()
            body = " ".join(p for p in paragraphs[1:] if not p.startswith("#") and len(p.split()) > 6)
            lines.append(json.dumps({"id": path.name, "title": title, "text": body}))
        export.write_text("\n".join(lines) + "\n")
    exported = Collection(work / "titled-jsonl", progress=False)
    if exported.count() == 0:
        exported.index_files([export])
    out["titled_jsonl"] = run_set(exported, questions, titled_relevant)
    exported.close()

    sys.path.insert(0, str(HERE))
    from quality_sets import load_beir

    corpus, queries, qrels = load_beir(MSMARCO)
    judged = {q: t for q, t in queries.items() if any(g > 0 for g in qrels[q].values())}
    full = Collection(work / "msmarco", progress=False)
    if full.count() != len(corpus):
        full.index_files([MSMARCO / "corpus.jsonl"])
    minus_path = work / "msmarco-minus"
    if not minus_path.exists():
        full.close()
        shutil.copytree(work / "msmarco", minus_path)
        minus = Collection(minus_path, progress=False)
        minus.delete(sorted({d for q in judged for d in qrels[q]}))
        minus.close()
        full = Collection(work / "msmarco", progress=False)
    for grade in (2, 1):
        answerable = [{"qid": q, "question": t, "answerable": True} for q, t in judged.items()]
        out[f"msmarco_grade{grade}"] = run_set(
            full, answerable, lambda q, p, g=grade: qrels[q["qid"]].get(p.id, 0) >= g)
    full.close()
    minus = Collection(minus_path, progress=False)
    out["msmarco_unanswerable"] = run_set(
        minus, [{"qid": q, "question": t, "answerable": False} for q, t in judged.items()], lambda q, p: False)
    minus.close()
    return out


# ---------------------------------------------------------------------------------------------
# Latency (driven from this tree)


def cli(src: Path, *args: str, env: dict | None = None) -> tuple[float, str]:
    full_env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("SEMSEARCH_SERVER", None)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "semsearch.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=900)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return seconds, done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(src: Path, folder: Path) -> subprocess.Popen:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "SEMSEARCH_API_KEY": ""}
    proc = subprocess.Popen([sys.executable, "-m", "semsearch.cli", "serve", str(folder), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 600
    while not (folder / "server.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not start")
        time.sleep(0.2)
    proc.port = port  # type: ignore[attr-defined]
    return proc


def mcp_session(src: Path, folder: Path, questions: list[str]) -> list[float]:
    """Seconds from starting `semsearch mcp` to the first ask's answer, then each further ask's."""
    import anyio
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "semsearch.cli", "mcp", str(folder)], env=env)
    times: list[float] = []

    async def main() -> None:
        started = time.perf_counter()
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            for q in questions:
                result = await session.call_tool("ask", {"question": q})
                assert not result.isError, result.content
                times.append(time.perf_counter() - started)
                started = time.perf_counter()

    anyio.run(main)
    return times


def latency(work: dict[str, Path], srcs: dict[str, Path], repeats: int, offset: int = 0) -> dict:
    """Each question is new to both trees' collections (the other tree caches its sentence vectors on disk:
    a question asked twice would not be cold); ``offset`` skips questions an earlier run asked."""
    out: dict = {"cold_cli": {name: [] for name in srcs}}
    questions = LATENCY_QUESTIONS[offset:offset + repeats]
    fresh_for_mcp = LATENCY_QUESTIONS[offset + repeats:offset + repeats + 6]
    for q in questions:  # A B A B: each question once per tree
        for name, src in srcs.items():
            out["cold_cli"][name].append(cli(src, "ask", q, "-c", str(work[name] / "msmarco"), "--json")[0])
    mine = next(iter(srcs))
    folder = work[mine] / "msmarco"
    server = serve(srcs[mine], folder)
    try:
        import http.client

        out["through_server_cli"], out["search_through_server_cli"] = [], []
        for q in questions:  # ask and search alternating
            out["through_server_cli"].append(cli(srcs[mine], "ask", q, "-c", str(folder), "--json")[0])
            out["search_through_server_cli"].append(cli(srcs[mine], "search", q, "-c", str(folder), "--json")[0])
        http_times = []
        for q in LATENCY_QUESTIONS:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)  # type: ignore[attr-defined]
            started = time.perf_counter()
            conn.request("POST", "/ask", body=json.dumps({"question": q}), headers={"content-type": "application/json"})
            conn.getresponse().read()
            http_times.append(time.perf_counter() - started)
            conn.close()
        out["http_warm"] = http_times
    finally:
        server.terminate()
        server.wait(timeout=60)
    for name, src in srcs.items():
        out[f"mcp_{name}"] = mcp_session(src, work[name] / "msmarco", fresh_for_mcp)
    return out


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    q = sub.add_parser("quality")
    q.add_argument("--work", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, help="the other tree's src folder")
    parser.add_argument("--work", type=Path, default=HERE / ".cache" / "answers")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE / "results_answers.json")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--offset", type=int, default=0, help="skip the first questions (asked by an earlier run)")
    args = parser.parse_args()
    if args.command == "quality":
        print(json.dumps(quality(args.work)))
        return
    srcs = {"this": SRC, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    work = {name: args.work / name for name in srcs}
    results: dict = {"uptime_before": os.getloadavg()}
    for name, src in srcs.items():
        work[name].mkdir(parents=True, exist_ok=True)
        if args.skip_quality and (work[name] / "msmarco").exists():
            continue
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, __file__, "quality", "--work", str(work[name])], capture_output=True,
                              text=True, env=env, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        results[f"quality_{name}"] = json.loads(done.stdout.strip().splitlines()[-1])
    timings = latency(work, srcs, args.repeats, args.offset)
    results["latency"] = {k: summary(v) if isinstance(v, list) else {n: summary(x) for n, x in v.items()}
                          for k, v in timings.items()}
    results["latency_runs"] = timings
    results["uptime_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "latency_runs"}, indent=2))


if __name__ == "__main__":
    main()
