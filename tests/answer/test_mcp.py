"""The MCP server end to end: `semsearch mcp` in a subprocess, driven by the official SDK's client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the MCP SDK (pip install 'semsearch[mcp]')")
anyio = pytest.importorskip("anyio")

SRC = Path(__file__).resolve().parents[2] / "src"
READ_TOOLS = {"list_collections", "search", "get_documents", "ask"}


def run_session(args: list[str], scenario) -> None:
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    params = StdioServerParameters(command=sys.executable, args=["-m", "semsearch.cli", "mcp", *args], env=env)

    async def main() -> None:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            await scenario(session)

    anyio.run(main)


def test_read_only_tools_search_get_and_ask(docs_collection):
    path = str(docs_collection.path)
    docs_collection.close()

    async def scenario(session) -> None:
        tools = (await session.list_tools()).tools
        assert {t.name for t in tools} == READ_TOOLS  # no write tool unless allowed
        assert all(t.annotations.readOnlyHint for t in tools)
        assert all(t.outputSchema for t in tools)  # structured results

        listed = await session.call_tool("list_collections", {})
        assert listed.structuredContent["collections"] == [
            {"name": "docs", "default": True, "documents": 5, "model": "sentence-transformers/all-MiniLM-L6-v2"}
        ]

        found = await session.call_tool("search", {"query": "moon landing", "k": 2})
        assert not found.isError, found.content
        assert found.structuredContent["hits"][0]["id"] == "apollo"
        assert len(found.structuredContent["hits"]) == 2
        filtered = await session.call_tool("search", {"query": "moon landing", "where": {"topic": "garden"}})
        assert [h["id"] for h in filtered.structuredContent["hits"]] == ["tomato"]
        # Issue 24: out-of-range values are refused with the message every door gives, never clamped.
        many = await session.call_tool("search", {"query": "anything", "k": 10_000})
        assert many.isError and many.content[0].text.endswith(": k is 10000; this server returns at most 20")
        for k in (0, -5):
            none = await session.call_tool("search", {"query": "anything", "k": k})
            assert none.isError and none.content[0].text.endswith(f": k must be a whole number of at least 1, got {k}")
        back = await session.call_tool("get_documents", {"ids": ["warranty"], "offset": -3})
        assert back.isError and back.content[0].text.endswith(": offset must be a whole number of at least 0, got -3")
        search_tool = next(t for t in tools if t.name == "search")
        k_schema = search_tool.inputSchema["properties"]["k"]
        assert k_schema["description"] and k_schema["minimum"] == 1 and k_schema["maximum"] == 20
        assert all(p.get("description") for p in search_tool.inputSchema["properties"].values())

        got = await session.call_tool("get_documents", {"ids": ["warranty", "nope"], "max_chars": 20})
        doc = got.structuredContent["documents"][0]
        assert doc["id"] == "warranty" and doc["text"] == "The warranty on the " and doc["length"] > 20
        assert got.structuredContent["missing"] == ["nope"]

        answer = await session.call_tool("ask", {"question": "How long is the kettle warranty?"})
        assert answer.structuredContent["answered"] is True
        assert "two years" in answer.structuredContent["answer"]
        assert answer.structuredContent["citations"][0]["id"] == "warranty"
        refusal = await session.call_tool("ask", {"question": "What is the boiling point of liquid nitrogen?"})
        assert refusal.structuredContent["answered"] is False and refusal.structuredContent["citations"] == []

        wrong = await session.call_tool("search", {"query": "moon", "collection": "other"})
        assert wrong.isError and "no collection named 'other'" in wrong.content[0].text
        bad = await session.call_tool("search", {"query": "moon", "where": {"year": {"$bogus": 1}}})
        assert bad.isError and "$bogus" in bad.content[0].text
        denied = await session.call_tool("delete_documents", {"ids": ["apollo"]})
        assert denied.isError

    run_session([path], scenario)


def test_writes_only_when_allowed(docs_collection):
    path = str(docs_collection.path)
    docs_collection.close()

    async def scenario(session) -> None:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == READ_TOOLS | {"add_documents", "delete_documents"}
        assert tools["delete_documents"].annotations.destructiveHint is True
        added = await session.call_tool("add_documents", {"documents": ["Penguins live in the southern hemisphere."],
                                                          "ids": ["penguin"]})
        assert added.structuredContent == {"collection": "docs", "ids": ["penguin"], "count": 1}
        found = await session.call_tool("search", {"query": "where do penguins live", "k": 1})
        assert found.structuredContent["hits"][0]["id"] == "penguin"
        deleted = await session.call_tool("delete_documents", {"ids": ["penguin"]})
        assert deleted.structuredContent["count"] == 1

    run_session([path, "--allow-writes"], scenario)

    from semsearch import Collection

    with Collection(path) as col:
        assert col.count() == 5 and col.get(["penguin"]) == []
