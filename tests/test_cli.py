"""The command line, end to end with the real model: index, search, info, delete, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from semsearch.cli import app

runner = CliRunner()


@pytest.fixture()
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "beach.txt").write_text("Budget-friendly lodging by the coast, five minutes from the sand.")
    (folder / "bank.md").write_text("# Rates\n\nThe central bank raised interest rates by a quarter point.")
    (folder / "sub" / "cake.html").write_text(
        "<html><head><title>Cake</title><style>p{color:red}</style></head>"
        "<body><p>Whisk the eggs with sugar, then fold in the flour for a sponge cake.</p></body></html>"
    )
    (folder / "sub" / "sports.csv").write_text(
        "id,text,year\nm1,The striker scored twice in the final,2021\nm2,The goalkeeper saved a penalty,2022\n"
    )
    (folder / "sub" / "science.jsonl").write_text(
        json.dumps({"_id": "p1", "title": "", "text": "Photosynthesis turns sunlight into sugar in green leaves."})
        + "\n"
    )
    return folder


def invoke(*args: str, collection=None):
    argv = list(args) + (["--collection", str(collection)] if collection else [])
    result = runner.invoke(app, argv)
    result.text = " ".join(result.output.split())  # independent of the terminal's width
    return result


def test_index_search_info_delete(tmp_path, docs, minilm_path):
    col = tmp_path / "col"
    r = invoke("index", str(docs), collection=col)
    assert r.exit_code == 0, r.output
    assert "indexed 6 document(s)" in r.text
    r = invoke("search", "affordable accommodation near the beach", "-k", "3", "--json", collection=col)
    assert r.exit_code == 0, r.output
    (result,) = json.loads(r.stdout)
    assert result["hits"][0]["source"].endswith("beach.txt")
    assert result["hits"][0]["score"] >= result["hits"][1]["score"]
    r = invoke("search", "football match", collection=col)
    assert r.exit_code == 0 and "striker" in r.output  # the readable table
    r = invoke("search", "baking", "--json", collection=col)
    assert json.loads(r.stdout)[0]["hits"][0]["text"].startswith("Cake")  # HTML title, not tags
    assert "<p>" not in r.stdout
    r = invoke("info", "--json", collection=col)
    info = json.loads(r.stdout)
    assert (info["documents"], info["model"], info["index"]) == (6, "sentence-transformers/all-MiniLM-L6-v2", "auto")
    assert info["size_bytes"] > 0
    r = invoke("delete", "m1", collection=col)
    assert r.exit_code == 0 and "deleted 1" in r.text
    r = invoke("delete", "--source", str(docs / "beach.txt"), collection=col)
    assert "deleted 1" in r.text
    assert json.loads(invoke("info", "--json", collection=col).stdout)["documents"] == 4


def test_reindex_skips_unchanged_replaces_changed_and_prunes_removed(tmp_path, docs, minilm_path):
    col = tmp_path / "col"
    assert invoke("index", str(docs), collection=col).exit_code == 0
    r = invoke("index", str(docs), collection=col)
    assert "files 0 added, 0 replaced, 0 removed, 5 unchanged" in r.text
    (docs / "beach.txt").write_text("A mountain cabin with a wood stove, far from any coast.")
    (docs / "bank.md").unlink()
    r = invoke("index", str(docs), collection=col)
    assert "0 added, 1 replaced, 1 removed" in r.text, r.output
    hits = json.loads(invoke("search", "cosy hut in the mountains", "--json", collection=col).stdout)[0]["hits"]
    assert hits[0]["text"].startswith("A mountain cabin")
    assert all("central bank" not in h["text"] for h in hits)
    assert sum("beach.txt" in (h["source"] or "") for h in hits) == 1


def test_default_collection_location(tmp_path, docs, minilm_path, monkeypatch):
    monkeypatch.setenv("SEMSEARCH_COLLECTION", str(tmp_path / "default"))
    assert runner.invoke(app, ["index", str(docs / "beach.txt")]).exit_code == 0
    r = runner.invoke(app, ["search", "seaside hotel", "--json"])
    assert json.loads(r.stdout)[0]["hits"][0]["source"].endswith("beach.txt")


def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code != 0
    assert "error:" in result.text, result.output
    for needle in needles:
        assert needle in result.text, result.output


def test_missing_path(tmp_path, minilm_path):
    r = invoke("index", str(tmp_path / "nope"), collection=tmp_path / "col")
    _one_line_error(r, "nope", "no such file")


def test_malformed_jsonl_names_the_line_and_changes_nothing(tmp_path, docs, minilm_path):
    col = tmp_path / "col"
    invoke("index", str(docs / "beach.txt"), collection=col)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": broken\n')
    r = invoke("index", str(bad), str(docs / "bank.md"), collection=col)
    _one_line_error(r, "bad.jsonl:3")
    assert json.loads(invoke("info", "--json", collection=col).stdout)["documents"] == 1


def test_csv_without_the_chosen_column(tmp_path, docs, minilm_path):
    r = invoke("index", str(docs / "sub" / "sports.csv"), "--text-column", "body", collection=tmp_path / "col")
    _one_line_error(r, "body", "text")


def test_binary_and_undecodable_files_are_skipped_with_a_warning(tmp_path, docs, minilm_path):
    (docs / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (docs / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (docs / "blank.md").write_text("   \n\n ")
    r = invoke("index", str(docs), collection=tmp_path / "col")
    assert r.exit_code == 0, r.output
    assert r.output.count("warning:") == 3
    assert "indexed 6 document(s)" in r.text


def test_bad_k_and_not_a_collection(tmp_path, docs, minilm_path):
    col = tmp_path / "col"
    invoke("index", str(docs / "beach.txt"), collection=col)
    _one_line_error(invoke("search", "x", "-k", "0", collection=col), "k must be")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("hello")
    _one_line_error(invoke("search", "x", collection=plain), "no collection")
    _one_line_error(invoke("index", str(docs / "beach.txt"), collection=plain), "not a semsearch collection")


def test_other_model_is_refused(tmp_path, docs, minilm_path, tiny_model_dir):
    col = tmp_path / "col"
    invoke("index", str(docs / "beach.txt"), collection=col)
    r = invoke("index", str(docs / "bank.md"), "--model", str(tiny_model_dir), collection=col)
    _one_line_error(r, "was built with model", "all-MiniLM-L6-v2")


def test_every_command_explains_every_option():
    import click
    import typer

    group = typer.main.get_command(app)
    assert {"index", "search", "info", "delete", "demo", "serve", "eval", "migrate", "reindex"} <= set(group.commands)
    for name, command in group.commands.items():
        assert (command.help or "").strip(), f"{name} has no help text"
        for param in command.params:
            if isinstance(param, click.Option):
                assert (param.help or "").strip(), f"semsearch {name} {param.opts[0]} has no help text"
            else:
                help_text = getattr(param, "help", None) or ""
                assert help_text.strip(), f"semsearch {name} argument {param.name} has no help text"


def test_console_script_runs(tmp_path):
    exe = [sys.executable, "-m", "semsearch.cli", "--help"]
    r = subprocess.run(exe, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "index" in r.stdout and "search" in r.stdout


def test_delete_source_of_a_removed_file_and_of_nothing(tmp_path, docs, minilm_path, monkeypatch):
    """Issue 18, defect 6: a relative --source was resolved only while the file existed, so deleting
    the documents of a file already removed from disk deleted nothing and still exited 0."""
    col = tmp_path / "col"
    assert invoke("index", str(docs), collection=col).exit_code == 0
    monkeypatch.chdir(docs.parent)
    (docs / "bank.md").unlink()
    r = invoke("delete", "--source", "docs/bank.md", "--source", "docs/beach.txt", collection=col)
    assert r.exit_code == 0, r.output
    assert "deleted 2 document(s)" in r.text
    r = invoke("delete", "--source", "docs/never-indexed.txt", collection=col)
    assert r.exit_code != 0 and "no documents from source docs/never-indexed.txt" in r.text
    info = json.loads(invoke("info", "--json", collection=col).stdout)
    assert info["documents"] == 4


def test_every_command_prints_its_help():
    """Help texts go through rich markup: a literal "[/...]" in one (an optional URL part) once
    made `semsearch search --help` crash half-way with a MarkupError."""
    import typer.main

    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"search", "index", "serve", "ask", "eval"} <= set(names)
    for name in names:
        result = runner.invoke(app, [name, "--help"], terminal_width=100)
        assert result.exit_code == 0, (name, result.output[-500:], result.exception)
        assert "Usage:" in result.output and "--help" in result.output, name


def test_a_named_command_is_built_alone_and_anything_else_gets_the_whole_app(monkeypatch, capsys):
    """Run as `semsearch NAME ...`, only NAME's parameters are built (typer builds all 16
    commands' otherwise: 60-100 ms of every cold command); help, no command and typos still see
    every command."""
    import typer.main

    sizes: list[int] = []
    real = typer.main.get_group
    monkeypatch.setattr(typer.main, "get_group", lambda a: sizes.append(len(a.registered_commands)) or real(a))
    monkeypatch.setenv("COLUMNS", "100")
    everything = len(app.registered_commands)

    with pytest.raises(SystemExit) as exit_:
        app(["search", "--help"], prog_name="semsearch")
    alone = capsys.readouterr().out
    assert exit_.value.code == 0 and sizes == [1] and len(app.registered_commands) == everything
    whole = runner.invoke(app, ["search", "--help"], terminal_width=100).output
    assert "Usage: semsearch search" in alone
    for option in ("--collection", "--mode", "--where", "--json", "--server"):
        assert (option in alone) == (option in whole) and option in whole, option

    sizes.clear()
    with pytest.raises(SystemExit) as exit_:
        app(["serch", "boil an egg"], prog_name="semsearch")
    assert exit_.value.code == 2 and "Did you mean 'search'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        app(["--help"], prog_name="semsearch")
    listed = capsys.readouterr().out
    assert exit_.value.code == 0 and all(name in listed for name in ("index", "search", "ask", "topics", "finetune"))
    assert sizes == [everything, everything]


def test_version():
    from semsearch.version import __version__

    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"semsearch {__version__}"


def test_delete_names_unknown_ids_and_fails_when_none_matched(tmp_path, docs, minilm_path):
    """Issue 23: `delete nosuch-id` printed "deleted 0 document(s)" and exited 0."""
    col = tmp_path / "col"
    assert invoke("index", str(docs), collection=col).exit_code == 0
    r = invoke("delete", "nosuch-id", collection=col)
    assert r.exit_code == 1 and "'nosuch-id'" in r.text and "deleted 0" in r.text
    r = invoke("delete", "m1", "also-missing", collection=col)
    assert r.exit_code == 0 and "deleted 1" in r.text and "'also-missing'" in r.text and "'m1'" not in r.text
    assert json.loads(invoke("info", "--json", collection=col).stdout)["documents"] == 5


@pytest.mark.parametrize("bad", [
    ["--chunk-size", "5", "--chunk-overlap", "10"],  # refused by the chunker
    ["--text-column", "body"],  # no such column in the CSV
    ["--index", "IVF-nonsense"],  # not an index spec
])
def test_a_failed_first_run_leaves_no_collection_behind(tmp_path, docs, minilm_path, bad):
    """Issue 23: a first `index` that failed had already created the collection with its settings, and
    every later run into it was refused until the folder was deleted by hand."""
    col = tmp_path / "col"
    r = invoke("index", str(docs), *bad, collection=col)
    assert r.exit_code != 0
    assert not col.exists()
    r = invoke("index", str(docs / "missing-folder"), collection=col)
    assert r.exit_code != 0 and not col.exists()
    r = invoke("index", str(docs), "--chunk-size", "64", collection=col)
    assert r.exit_code == 0, r.output
    info = json.loads(invoke("info", "--json", collection=col).stdout)
    assert (info["documents"], info["chunk_size"]) == (6, 64)


def test_an_emptied_collection_takes_new_settings(tmp_path, minilm_path, tiny_model_dir):
    """Issue 23: a collection that holds no document is made anew with the settings asked for,
    instead of refusing another model or chunk size."""
    from semsearch import Collection, ModelMismatchError

    with Collection(tmp_path / "col") as col:
        col.add(["a first document"], ids=["a"])
    with pytest.raises(ModelMismatchError):  # it holds a document: its model stays
        Collection(tmp_path / "col", model=str(tiny_model_dir))
    with Collection(tmp_path / "col") as col:
        col.delete("a")
    with Collection(tmp_path / "col", model=str(tiny_model_dir), chunk_size=40) as col:
        assert col.count() == 0
        col.add(["another document"], ids=["b"])
    with Collection(tmp_path / "col") as col:
        assert (col.manifest["model"], col.manifest["chunk_size"], col.dimension) == (str(tiny_model_dir), 40, 32)
        assert [d.id for d in col.get()] == ["b"]
