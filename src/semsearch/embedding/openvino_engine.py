"""OpenVINO as the encoding engine on CPUs: the transformer runs in OpenVINO, the rest stays.

sentence-transformers' own OpenVINO backend needs optimum-intel, which pins other versions of
torch and transformers than ours (it would pull a CUDA torch); so this module converts the
Hugging Face model of a sentence-transformers ``Transformer`` module with ``openvino``
itself and swaps only that module's forward. Prompts, tokenisation, truncation, length sorting,
pooling and normalisation stay sentence-transformers' own code.

Why it is faster here (bench/RESULTS.md, issue 5): OpenVINO fuses attention, layer norm and
GELU into few kernels, runs bf16 natively where the CPU has it, and with its THROUGHPUT hint
runs one inference stream per core on its own slice of the batch instead of splitting every
operation across cores (no per-operation barriers, far less sensitive to a busy machine).

The converted model is cached on disk (``SEMSEARCH_CACHE_DIR`` or the per-user cache
directory), keyed by the model's files and the library versions, so only the first process
pays the ~2 s conversion; later ones read it in ~0.2 s. The compiled model (kernels chosen for
this CPU) is cached too, in OpenVINO's own model cache (``CACHE_DIR``), so a later process
imports it instead of compiling. The light query encoder (:mod:`.light`) compiles the same IR
file with the same settings (:class:`Runner`), which is what makes its vectors the same.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import tempfile
import threading
import warnings
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ov_import import core, first_inference, inference_started, runtime, with_converter
from .prepared import cache_dir, cpu_identity

log = logging.getLogger(__name__)

# Rows per inference request: measured best on 2 cores (bench/RESULTS.md).
ROWS_PER_REQUEST = 8
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}


def batches_by_tokens(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """The batches of a large input: its indices longest first by token count (ties in input
    order), cut into runs of ``batch_size``.

    Tokens, not characters (sentence-transformers' key): a batch is padded to its longest text in
    tokens, and on msmarco-5k batches of 8 consecutive texts by characters padded 15% of the token
    positions computed, by tokens 0.2% (bench/RESULTS.md, issue 25). Both encoders (the full path's
    :class:`OpenVINOEncoder` and the light path's) cut batches here from the same lengths
    (:class:`LengthKey`), so every text shares its batch with the same texts on either path (bf16
    results depend slightly on the padded width).
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[s : s + batch_size].tolist() for s in range(0, len(order), batch_size)]


class LengthKey:
    """Token counts of texts as given (no prompt), truncated to the model's maximum: the sort key
    of :func:`batches_by_tokens`, computed alike by the full and the light path from the same
    serialised tokenizer."""

    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_str(tokenizer_json)
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)
        self._encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)

    def __call__(self, texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in self._encode(list(texts))]


def openvino_available() -> bool:
    try:
        runtime()
    except Exception:  # noqa: BLE001 - missing, or a wheel that does not load on this platform
        return False
    return True


def supports(st_model: Any) -> bool:
    """True when the first module is a text transformer whose output is its last hidden state."""
    first = st_model[0] if len(st_model) else None
    hf = _hf_model(first)
    if hf is None or not (hasattr(first, "preprocess") or hasattr(first, "tokenize")):
        return False
    if getattr(getattr(hf, "config", None), "output_hidden_states", False):
        return False  # a later module reads every layer: keep the whole model in torch
    config = getattr(first, "modality_config", None)
    if config is not None:  # sentence-transformers >= 6: check what the module's forward reads
        text = config.get("text") if isinstance(config, dict) else None
        if (set(config) != {"text"} or not text or text.get("method") != "forward"
                or text.get("method_output_name") != "last_hidden_state"):
            return False
    return True


def _hf_model(module: Any) -> Any:
    for name in ("auto_model", "model"):
        inner = getattr(module, name, None)
        if inner is not None and hasattr(inner, "config"):
            return inner
    return None


def _fingerprint(location: str, hf: Any, input_names: list[str]) -> str:
    import torch
    import transformers

    openvino = runtime()
    h = hashlib.sha256()
    parts: dict[str, Any] = {
        "location": location,
        "config": hf.config.to_json_string(use_diff=False),
        "inputs": input_names,
        # 3: the token embedding table outside the graph (token_table).
        "versions": [openvino.__version__, torch.__version__, transformers.__version__, 3],
    }
    folder = Path(location)
    if folder.is_dir():  # the weights themselves: size and mtime of every file in the model folder
        parts["files"] = sorted(
            (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()
        )
    else:  # a hub name: the weights, hashed (a few MB/s, once per process)
        for tensor in hf.state_dict().values():
            h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(parts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


TOKEN_TABLE = "token_embeddings.npy"


def token_table(ir_path: str) -> np.ndarray | None:
    """The token embedding table saved next to an IR file, memory-mapped (None if the IR has none).

    Only the rows of the tokens looked up are ever read from disk: the table is most of a small
    model's weights (47 of 90 MB for MiniLM) and a query touches a dozen rows of it.
    """
    path = Path(ir_path).with_name(TOKEN_TABLE)
    return np.load(path, mmap_mode="r") if path.exists() else None


def _split_embeddings(hf: Any, example: dict[str, Any], names: list[str]) -> tuple[Any, dict[str, Any]] | None:
    """(token table, example inputs) to convert the model from ``inputs_embeds``, or None to keep ``input_ids``.

    Only where the model's forward gives exactly the same output from the looked-up rows as from
    the ids (models deriving positions from ids with left padding would not).
    """
    import torch

    embedding = hf.get_input_embeddings() if hasattr(hf, "get_input_embeddings") else None
    if "input_ids" not in names or type(embedding) is not torch.nn.Embedding:
        return None
    others = {k: example[k] for k in names if k != "input_ids"}
    try:
        with torch.inference_mode(False), torch.no_grad():
            rows = embedding(example["input_ids"])
            from_ids = hf(input_ids=example["input_ids"], **others)[0]
            from_rows = hf(inputs_embeds=rows, **others)[0]
    except Exception:  # noqa: BLE001 - a forward without inputs_embeds: convert from ids
        return None
    if not torch.equal(from_ids, from_rows):
        return None
    return embedding.weight.detach().cpu().float().numpy(), {"inputs_embeds": rows, **others}


@dataclass
class Converted:
    """A converted model: the IR file's path (None when held only in memory), what to compile, the token table."""

    ir_path: str | None
    model: Any
    table: np.ndarray | None


def _converted(first: Any, location: str) -> Converted:
    """The OpenVINO model of ``first``'s Hugging Face model, from the cache, else converted.

    The token embedding lookup stays outside the graph where that gives the same output
    (:func:`token_table`); the graph starts at ``inputs_embeds``.
    """
    import torch

    ov = with_converter()
    hf = _hf_model(first)
    # Two texts of different lengths, so the traced graph is the one with padding and an
    # attention mask (a batch without padding could let the model trace a mask-free shortcut).
    tokenize = getattr(first, "preprocess", None) or first.tokenize
    example = tokenize(["semsearch converts this model to OpenVINO once and caches it", "once"])
    names = [k for k, v in example.items() if isinstance(v, torch.Tensor)]
    folder = cache_dir() / "openvino" / _fingerprint(location, hf, names)
    xml = folder / "model.xml"
    if xml.exists():
        try:
            core().read_model(str(xml))  # checks the entry is whole; compiling reads it again
            return Converted(str(xml), str(xml), token_table(str(xml)))
        except Exception as exc:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
            log.warning("converted model in %s is unreadable (%s); converting again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    elif folder.exists():  # an entry missing its model file: rebuilt
        shutil.rmtree(folder, ignore_errors=True)
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # tracing reads attributes that log notes meant for training
    split = _split_embeddings(hf.eval(), example, names)
    table, example_input = split if split is not None else (None, {k: example[k] for k in names})
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about Python-level branches, fixed by the example
            model = ov.convert_model(hf, example_input=example_input)
    finally:
        hf_logging.set_verbosity(verbosity)
    # Keep the token embeddings only: the pooler branch is then pruned from the graph.
    model = ov.Model([model.output(0)], model.get_parameters(), "semsearch-encoder")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        if table is not None:
            np.save(tmp / TOKEN_TABLE, table)
        try:
            tmp.rename(folder)  # atomic; a concurrent process may have won the race: keep its copy
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError as exc:  # a read-only or full cache only costs the next process a conversion
        log.info("could not cache the converted model in %s: %s", folder, exc)
        return Converted(None, model, table)
    if not xml.exists():  # removed meanwhile: this process runs the model it converted
        return Converted(None, model, table)
    # Every process compiles the saved file, the first one too: one source for the full path and
    # the light query path alike.
    return Converted(str(xml), str(xml), token_table(str(xml)))


def compiled_cache_dir() -> Path:
    """OpenVINO's model cache: compiled kernels for this CPU, imported by later processes."""
    return cache_dir() / "openvino-compiled" / cpu_identity()


class Runner:
    """One compiled model; each calling thread gets its own inference requests.

    A batch is split into one slice per stream, all in flight at once (what a single query or a
    small batch needs for low latency). The encoder's worker threads set ``split`` to 1: they
    send whole batches, and several workers keep every stream busy. ``model`` is the path of an
    IR file (``model.xml``) or an ``openvino.Model``; the same model and precision always get the
    same compiled program, in this process or a later one.
    """

    def __init__(self, model: Any, precision: str, table: np.ndarray | None = None, hint: str = "THROUGHPUT") -> None:
        # THROUGHPUT: one stream per core (measured faster here than LATENCY's one stream over all
        # cores, and pinning, denormal or stream-count settings made no difference). The light
        # query path takes LATENCY: one query on every core, and one copy of the weights less.
        self.hint = hint
        config = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision], "PERFORMANCE_HINT": hint}
        try:
            self.compiled = core().compile_model(model, "CPU", {**config, "CACHE_DIR": str(compiled_cache_dir())})
        except Exception as exc:  # noqa: BLE001 - an unwritable or damaged model cache: compile afresh
            log.info("OpenVINO's model cache is unusable (%s); compiling without it", " ".join(str(exc).split())[:200])
            self.compiled = core().compile_model(model, "CPU", config)
        self.streams = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        self.table = table if "inputs_embeds" in self.inputs else None
        # What callers give: the tokenizer's arrays (ids, not embeddings, where the table is outside).
        self.wants = ["input_ids" if n == "inputs_embeds" and self.table is not None else n for n in self.inputs]
        self._local = threading.local()

    def set_split(self, parts: int) -> None:
        self._local.split = parts

    def _own_requests(self, n: int) -> list[Any]:
        reqs = getattr(self._local, "requests", None)
        if reqs is None:
            reqs = self._local.requests = []
        while len(reqs) < n:
            reqs.append(self.compiled.create_infer_request())
        return reqs

    def __call__(self, arrays: dict[str, np.ndarray], split: int | None = None) -> np.ndarray:
        """The model's first output for a batch of inputs (int64 arrays named as in :attr:`wants`)."""
        return first_inference(lambda: self._run(arrays, split))

    def stream(self, batches: Iterable[dict[str, np.ndarray]], depth: int | None = None) -> Iterator[np.ndarray]:
        """The model's first output for each batch, in order, each batch whole on one stream.

        Up to ``depth`` batches (default two per stream) are in flight while the caller works,
        so what it does between two outputs (preparing the next batch, pooling this one) overlaps
        the model's computing instead of leaving the streams idle. The first batch of a process
        runs alone (:func:`.ov_import.first_inference`).
        """
        depth = depth or 2 * self.streams
        pending: deque[Any] = deque()
        free = list(self._own_requests(depth)[:depth])
        try:
            for arrays in batches:
                if not inference_started():
                    yield self(arrays, split=1)
                    continue
                if len(pending) == depth:
                    yield self._collect(pending.popleft(), free)
                request = free.pop()
                request.start_async(self._inputs(arrays))
                pending.append(request)
            while pending:
                yield self._collect(pending.popleft(), free)
        finally:
            for request in pending:  # a consumer that stopped early: leave no request running
                request.wait()

    @staticmethod
    def _collect(request: Any, free: list[Any]) -> np.ndarray:
        request.wait()
        out = request.get_output_tensor(0).data.copy()
        free.append(request)
        return out

    def _inputs(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """What the compiled model takes: the looked-up token rows in place of the ids where the table is outside."""
        if self.table is None:
            return arrays
        arrays = dict(arrays)
        arrays["inputs_embeds"] = np.asarray(self.table[arrays.pop("input_ids")], dtype=np.float32)
        return arrays

    def _run(self, arrays: dict[str, np.ndarray], split: int | None) -> np.ndarray:
        arrays = self._inputs(arrays)
        rows = len(arrays[self.inputs[0]])
        pieces = split or int(getattr(self._local, "split", self.streams))
        parts = np.array_split(np.arange(rows), min(pieces, rows))
        reqs = self._own_requests(len(parts))
        for req, part in zip(reqs, parts):
            req.start_async({name: a[part[0] : part[-1] + 1] for name, a in arrays.items()})
        out = []
        for req, _ in zip(reqs, parts):
            req.wait()
            out.append(req.get_output_tensor(0).data.copy())
        return np.concatenate(out) if len(out) > 1 else out[0]


class OpenVINOEncoder:
    """``encode_document`` / ``encode_query`` of a sentence-transformers model whose transformer
    runs in OpenVINO.

    Small inputs (a query, a few texts) are one sentence-transformers call whose batch is split
    across the streams. Larger inputs are cut into batches by token count
    (:func:`batches_by_tokens`: next to no padding), grouped in pieces of consecutive batches
    encoded by ``2 x streams`` worker threads: while one worker tokenizes or pools, the others'
    requests keep every stream computing (measured +10% on 2 cores over one call:
    bench/RESULTS.md). The result depends only on the input, never on thread timing: each batch
    is fixed by the sort, and each is one sentence-transformers call.
    """

    PIECE_BATCHES = 4

    def __init__(self, model: Any, runner: Runner, ir_path: str | None = None) -> None:
        self.model = model
        self.runner = runner
        self.ir_path = ir_path  # the IR file compiled, None when held in memory only
        self.batch_size = ROWS_PER_REQUEST
        self.workers = 2 * runner.streams
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._length_key: LengthKey | None = None

    def encode_document(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self._encode(self.model.encode_document, texts, **kwargs)

    def encode_query(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        return self._encode(self.model.encode_query, texts, **kwargs)

    def _workers(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="semsearch-openvino",
                                                initializer=self.runner.set_split, initargs=(1,))
            return self._pool

    def lengths(self, texts: Sequence[str]) -> list[int]:
        """The sort key of :func:`batches_by_tokens` (characters for a model without a fast tokenizer,
        which has no light path to agree with)."""
        with self._pool_lock:
            if self._length_key is None:
                backend = getattr(getattr(self.model[0], "tokenizer", None), "backend_tokenizer", None)
                if backend is None:
                    return [len(t) for t in texts]
                self._length_key = LengthKey(backend.to_str(), int(self.model.max_seq_length))
        return self._length_key(texts)

    def _encode(self, encode: Any, texts: list[str], batch_size: int | None = None, show_progress_bar: bool = False,
                **kwargs: Any) -> np.ndarray:
        batch_size = batch_size or self.batch_size
        kwargs["convert_to_numpy"] = True
        piece = batch_size * self.PIECE_BATCHES
        if len(texts) <= piece or self.workers < 2:
            return np.asarray(encode(list(texts), batch_size=batch_size, show_progress_bar=show_progress_bar, **kwargs))
        batches = batches_by_tokens(self.lengths(texts), batch_size)
        pieces = [batches[s : s + self.PIECE_BATCHES] for s in range(0, len(batches), self.PIECE_BATCHES)]

        def run(part: list[list[int]]) -> np.ndarray:  # one call per batch: sentence-transformers keeps it whole
            return np.concatenate([np.asarray(encode([texts[i] for i in b], batch_size=len(b),
                                                     show_progress_bar=False, **kwargs)) for b in part])

        pool = self._workers()
        futures = {pool.submit(run, p): [i for b in p for i in b] for p in pieces}
        bar = None
        if show_progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc="Batches", unit="text")
        out: np.ndarray | None = None
        try:
            for future in as_completed(futures):
                vectors = np.asarray(future.result())
                if out is None:
                    out = np.empty((len(texts), vectors.shape[1]), dtype=vectors.dtype)
                out[futures[future]] = vectors
                if bar is not None:
                    bar.update(len(vectors))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
        assert out is not None
        return out


def openvino_model(st_model: Any, location: str, precision: str) -> OpenVINOEncoder:
    """An encoder running ``st_model``'s transformer in OpenVINO (``batch_size``: its best batch).

    It encodes through a copy of ``st_model`` that shares every module and weight with the
    original except the first module, a shallow copy whose forward calls OpenVINO; the original
    keeps encoding in torch.
    """
    import torch

    # third-party private: torch's Module keeps its children in _modules; a copy with one child
    first_key = next(iter(st_model._modules))  # replaced needs its own dict (setattr would change the original)
    first = next(st_model.children())
    converted = _converted(first, location)
    runner = Runner(converted.model, precision, converted.table)
    fallback = first.forward
    output_name = getattr(first, "module_output_name", "token_embeddings")

    def forward(features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if kwargs or features.get("modality", "text") != "text":
            return fallback(features, **kwargs)  # anything the conversion did not cover runs in torch
        features[output_name] = torch.from_numpy(runner({name: features[name].numpy() for name in runner.wants}))
        return features

    ov_first = copy.copy(first)
    object.__setattr__(ov_first, "forward", forward)
    ov_model = copy.copy(st_model)
    # third-party private: the copy's own dict of children (see above)
    modules = OrderedDict(st_model._modules)
    modules[first_key] = ov_first
    object.__setattr__(ov_model, "_modules", modules)
    return OpenVINOEncoder(ov_model, runner, converted.ir_path)
