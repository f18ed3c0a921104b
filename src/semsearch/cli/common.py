"""What every command shares: the app, consoles, common options, opening a collection, errors."""

from __future__ import annotations

import os
import sqlite3
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from ..errors import SemsearchError


class _App(typer.Typer):
    """A Typer app that, run from a command line naming one of its commands, builds that command
    only: typer otherwise builds every command's parameters first (measured 60-100 ms for 16
    commands, a tenth of a cold ``semsearch search``). Anything else (no command, ``--help``, a
    misspelt command) gets the whole app, so help lists everything and typos get suggestions."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        argv = kwargs.get("args", args[0] if args else None)
        argv = sys.argv[1:] if argv is None else list(argv)
        from typer.main import get_command_name, get_group

        chosen = [c for c in self.registered_commands
                  if argv and (c.name or get_command_name(c.callback.__name__ if c.callback else "")) == argv[0]]
        if len(chosen) != 1:
            return super().__call__(*args, **kwargs)
        everything, self.registered_commands = self.registered_commands, chosen
        try:
            group = get_group(self)  # a group even with one command: argv[0] still names it
        finally:
            self.registered_commands = everything
        return group(*args, **kwargs)


app = _App(
    help="Semantic search over your documents: index files, then search them by meaning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from ..version import __version__

        sys.stdout.write(f"semsearch {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print semsearch's version and exit.")] = False,
) -> None:
    """Semantic search over your documents: index files, then search them by meaning."""

def default_collection() -> Path:
    """$SEMSEARCH_COLLECTION, else a per-user data folder (so every command finds it)."""
    env = os.environ.get("SEMSEARCH_COLLECTION")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("semsearch")) / "default"


CollectionOpt = Annotated[
    Path | None,
    typer.Option(
        "--collection", "-c",
        help="Collection folder. Default: $SEMSEARCH_COLLECTION, else a per-user data folder.",
        show_default=False,
    ),
]
LockTimeoutOpt = Annotated[
    float, typer.Option("--lock-timeout", help="Seconds to wait while another process writes to the collection.")
]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        "--precision",
        help="Encoding precision: auto (the fastest that agrees with fp32: bf16 where the CPU or GPU has it), fp32, "
             "bf16, fp16.",
    ),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Encoding engine: auto (OpenVINO on the CPU when installed and it agrees with torch), torch, openvino.",
    ),
]


WhereOpt = Annotated[
    str | None,
    typer.Option(
        "--where", help='Metadata filter as JSON, e.g. \'{"topic": "ml", "year": {"$gte": 2020}}\'.', show_default=False
    ),
]
WhereDocumentOpt = Annotated[
    str | None,
    typer.Option(
        "--where-document", help='Document-text filter as JSON, e.g. \'{"$contains": "FAISS"}\'.', show_default=False
    ),
]


BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend", help="Where the collection lives: local (a folder) or milvus (Milvus Lite file or cluster)."
    ),
]
UriOpt = Annotated[
    str | None,
    typer.Option(
        "--uri", help="Milvus: ./milvus.db (Milvus Lite) or http://host:19530. Default ./milvus.db.", show_default=False
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="SEMSEARCH_MILVUS_TOKEN",
        help="Milvus credentials (user:password or API key); also $SEMSEARCH_MILVUS_TOKEN.",
        show_default=False,
    ),
]


ServerOpt = Annotated[
    str,
    typer.Option(
        "--server", envvar="SEMSEARCH_SERVER",
        help="auto: let the `semsearch serve` running on this collection answer if there is one (the same result, "
             "without loading anything here), else work here; off: always here; or the loopback URL of a server "
             "(http://127.0.0.1:8000\\[/collections/NAME]). Also $SEMSEARCH_SERVER.",
    ),
]


LlmUrlOpt = Annotated[
    str | None,
    typer.Option("--llm-url", envvar="SEMSEARCH_LLM_URL", show_default=False,
                 help="OpenAI-compatible API base of a language model (Ollama, llama.cpp, vLLM, LM Studio, OpenAI), "
                      "e.g. http://127.0.0.1:11434/v1; also $SEMSEARCH_LLM_URL. Default: an offline extractive answer. "
                      "The key, if one is needed, comes from $SEMSEARCH_LLM_API_KEY."),
]
LlmModelOpt = Annotated[
    str | None,
    typer.Option("--llm-model", envvar="SEMSEARCH_LLM_MODEL", show_default=False,
                 help="Model to ask (default: the first one the server lists); also $SEMSEARCH_LLM_MODEL."),
]
LlmTimeoutOpt = Annotated[
    float, typer.Option("--llm-timeout", help="Seconds to wait for the model's first word and between words.")
]


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    err.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


INDEX_HELP = (
    "Vector index: auto (default: exact below 100k vectors, then IVF tuned to recall@10 >= 0.95; "
    "auto:2GB adds a memory budget), a FAISS index_factory string (Flat, IVF4096,Flat, IVF4096,PQ48, "
    "IVF4096,SQ8, HNSW32, HNSW32,SQ8, SQ8/int8, PQ48; PCA128,Flat or PCA128,IVF4096,Flat for smaller vectors), "
    "or binary / binary,SQ8 (sign bits with rescoring)."
)


def collection_exists(path: Path | None) -> bool:
    return ((path or default_collection()) / "collection.sqlite3").exists()


def open_collection(path: Path | None, *, create: bool, lock_timeout: float = 60.0, backend: str = "local",
          uri: str | None = None, token: str | None = None, **kwargs):
    from ..collection import Collection

    folder = path or default_collection()
    if backend == "local" and not create and not (folder / "collection.sqlite3").exists():
        hint = "" if path else " (the default collection)"
        fail(f"no collection at {folder}{hint}; index documents first: semsearch index PATH")
    return Collection(folder, backend=backend, uri=uri, token=token, create=create, lock_timeout=lock_timeout, **kwargs)


def run_command(fn):  # noqa: ANN001, ANN202
    """Turn semsearch errors into one-line messages and a non-zero exit code."""
    warnings.showwarning = show_warning
    try:
        return fn()
    except SemsearchError as exc:
        fail(str(exc))
    except sqlite3.DatabaseError as exc:
        fail(f"the collection's database is damaged or unreadable ({exc}); `semsearch verify` tells what is wrong, "
              "and `semsearch verify --repair` copies every readable document into a fresh store")
    except KeyboardInterrupt:
        fail("interrupted; everything acknowledged before this point is saved", code=130)
