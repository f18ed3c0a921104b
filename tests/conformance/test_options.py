"""Every door offers each option of :mod:`semsearch.options` it should, as the one definition says.

For each operation and each of its options, every door in ``Option.doors`` that offers the
operation must offer the option with the definition's default: Python in the facade method's
signature, the CLI as ``--name`` (shown by ``--help``), HTTP in the request model's OpenAPI schema
and MCP in the tool's input schema, the last two with the option's description and bounds (a door
may only lower a maximum: its own cap, refused with :func:`semsearch.options.over_limit`).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from semsearch.options import ASK, DUPLICATES, READ, SEARCH, SIMILAR, TOPICS, Option

#: Where each door offers each operation: the facade method (Python), the command (CLI), the
#: request model (HTTP) and the tool (MCP); None where the door does not offer it.
OPERATIONS: dict[str, tuple[dict[str, Option], dict[str, str | None]]] = {
    "search": (SEARCH, {"python": "search", "cli": "search", "http": "SearchRequest", "mcp": "search"}),
    "ask": (ASK, {"python": "ask", "cli": "ask", "http": "AskRequest", "mcp": "ask"}),
    "similar": (SIMILAR, {"python": "similar", "cli": "similar", "http": "SimilarRequest", "mcp": None}),
    "duplicates": (DUPLICATES, {"python": "duplicates", "cli": "duplicates", "http": "DuplicatesRequest",
                                "mcp": None}),
    "topics": (TOPICS, {"python": "topics", "cli": "topics", "http": "TopicsRequest", "mcp": None}),
    "read": (READ, {"python": None, "cli": None, "http": None, "mcp": "get_documents"}),
}
def cases() -> list[Any]:
    out = []
    for operation, (options, where) in OPERATIONS.items():
        for name, option in options.items():
            for door in option.doors:
                if where[door] is None:
                    continue
                out.append(pytest.param(operation, name, door, id=f"{operation}-{name}-{door}"))
    return out


# -- what each door offers ---------------------------------------------------------------------
def python_parameters(method: str) -> dict[str, Any]:
    """The keyword arguments of a facade method and their defaults (ask: those of ``stream_ask``,
    which it documents; its search options pass through to ``search``)."""
    from semsearch import Collection
    from semsearch.answer import stream_ask

    fn = stream_ask if method == "ask" else getattr(Collection, method)
    params = {p.name: p.default for p in inspect.signature(fn).parameters.values()
              if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if method == "ask":
        search = python_parameters("search")
        params.update({name: search[name] for name in SEARCH if name not in params})
    return params


@pytest.fixture(scope="module")
def cli_commands() -> dict[str, Any]:
    import typer

    from semsearch.cli import app

    return typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def openapi(corpus_path) -> dict[str, Any]:
    from semsearch.server import create_app

    return create_app({"docs": corpus_path}, warm_up=False).openapi()["components"]["schemas"]


@pytest.fixture(scope="module")
def mcp_tools() -> dict[str, Any]:
    anyio = pytest.importorskip("anyio")
    from semsearch.mcp_server import build_server

    server = build_server({"docs": None})  # listing the tools reads no collection
    return {tool.name: tool.inputSchema for tool in anyio.run(server.list_tools)}


def schema_differences(option: Option, schema: dict[str, Any] | None) -> list[str]:
    """How a JSON-schema property differs from the option: presence, default, description, bounds."""
    if schema is None:
        return ["not offered"]
    out = []
    if schema.get("default") != option.default:
        out.append(f"default {schema.get('default')!r}, not {option.default!r}")
    if schema.get("description") != option.help:
        out.append(f"description {schema.get('description')!r}, not {option.help!r}")
    for bound, value in option.schema().items():
        got = schema.get(bound)
        if bound == "maximum" and isinstance(got, (int, float)) and got <= value:
            continue  # a door's own, lower cap
        if got != value:
            out.append(f"{bound} {got!r}, not {value!r}")
    return out


@pytest.mark.parametrize(("operation", "name", "door"), cases())
def test_each_door_offers_the_option_as_defined(operation, name, door, cli_commands, openapi, mcp_tools):
    options, where = OPERATIONS[operation]
    option = options[name]
    target = where[door]
    if door == "python":
        params = python_parameters(str(target))
        assert name in params, f"Collection.{target} has no {name}"
        assert params[name] == option.default
    elif door == "cli":
        params = {p.name: p for p in cli_commands[target].params}
        assert name in params, f"semsearch {target} has no --{name.replace('_', '-')}"
        param = params[name]
        assert f"--{name.replace('_', '-')}" in param.opts and param.help
        assert param.default == option.default
    elif door == "http":
        assert schema_differences(option, openapi[str(target)]["properties"].get(name)) == []
    else:
        assert schema_differences(option, mcp_tools[str(target)]["properties"].get(name)) == []


@pytest.mark.parametrize("command", ["search", "ask", "similar", "duplicates", "topics"])
def test_cli_help_shows_every_option_of_the_command(command):
    from typer.testing import CliRunner

    from semsearch.cli import app

    options, _ = OPERATIONS[command]
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200", "TERM": "dumb"})
    assert result.exit_code == 0
    shown = {name for name, option in options.items() if "cli" in option.doors
             and f"--{name.replace('_', '-')}" in result.output}
    expected = {name for name, option in options.items() if "cli" in option.doors}
    assert expected - shown == set()
