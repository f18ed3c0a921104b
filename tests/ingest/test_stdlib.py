from __future__ import annotations

import json
from pathlib import Path

import pytest

from semsearch.errors import InvalidInputError
from semsearch.ingest import stdlib_docstrings


@pytest.fixture(scope="module")
def json_records():
    return {record.id: record for record in stdlib_docstrings(["json"])}


def test_json_dumps_record(json_records):
    record = json_records["json.dumps"]
    assert record.text.startswith("json.dumps: Serialize ``obj`` to a JSON formatted ``str``.")
    assert record.metadata["module"] == "json"
    assert record.metadata["kind"] == "function"
    assert record.metadata["name"] == "json.dumps"
    assert record.metadata["line"] == record.position > 0
    assert Path(record.source) == Path(json.__file__)
    source_line = Path(record.source).read_text().splitlines()[record.metadata["line"] - 1]
    assert source_line.startswith("def dumps(")


def test_module_class_and_method_records(json_records):
    assert json_records["json"].metadata["kind"] == "module"
    assert json_records["json"].source.endswith("__init__.py")
    assert json_records["json.encoder.JSONEncoder"].metadata["kind"] == "class"
    method = json_records["json.encoder.JSONEncoder.encode"]
    assert method.metadata == {
        "module": "json.encoder",
        "kind": "method",
        "name": "json.encoder.JSONEncoder.encode",
        "line": method.position,
    }


def test_private_short_and_foreign_docstrings_are_skipped(json_records):
    assert all(
        not part.startswith("_") for record_id in json_records for part in record_id.split(".")
    )
    assert all(record.id.split(".")[0] == "json" for record in json_records.values())
    assert all(len(record.text) >= 40 for record in json_records.values())
    assert all(
        record.text.startswith(f"{record.id}: ") for record in json_records.values()
    )


def test_kinds_filter_and_validation():
    records = stdlib_docstrings(["json"], kinds=["module"])
    assert {r.metadata["kind"] for r in records} == {"module"}
    with pytest.raises(InvalidInputError, match="unknown docstring kind"):
        stdlib_docstrings(["json"], kinds=["lambda"])


def test_full_walk_skips_tests_and_private_packages():
    records = stdlib_docstrings()
    assert 1000 < len(records) < 15000
    modules = {record.metadata["module"].split(".")[0] for record in records}
    assert {"json", "os", "collections", "asyncio"} <= modules
    assert not modules & {"test", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip",
                          "encodings"}
    assert all(not m.startswith("_") for m in modules)
    assert len({record.id for record in records}) == len(records)
