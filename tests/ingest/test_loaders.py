from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from semsearch.errors import InvalidInputError, MissingPathError
from semsearch.ingest import (
    SUPPORTED_SUFFIXES,
    EmptyDocumentError,
    LoadOptions,
    UnreadableFileError,
    discover,
    file_hash,
    load_file,
)
from semsearch.ingest.loaders import parse_scalar


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- discover -------------------------------------------------------------------------------


def test_discover_walks_folders_sorted_skipping_hidden_and_unsupported(tmp_path):
    write(tmp_path / "b.txt", "b")
    write(tmp_path / "a.md", "a")
    write(tmp_path / "sub" / "c.jsonl", "{}")
    write(tmp_path / "sub" / "image.png", b"\x89PNG")
    write(tmp_path / ".git" / "config.txt", "hidden dir")
    write(tmp_path / ".semsearch" / "meta.jsonl", "hidden dir")
    write(tmp_path / ".hidden.txt", "hidden file")
    write(tmp_path / "UPPER.TXT", "suffix case does not matter")

    found = discover([tmp_path])

    assert found == [
        (tmp_path / "UPPER.TXT").resolve(),
        (tmp_path / "a.md").resolve(),
        (tmp_path / "b.txt").resolve(),
        (tmp_path / "sub" / "c.jsonl").resolve(),
    ]
    assert all(p.is_absolute() for p in found)


def test_discover_deduplicates_and_keeps_order(tmp_path, monkeypatch):
    a = write(tmp_path / "a.txt", "a")
    write(tmp_path / "b.txt", "b")
    monkeypatch.chdir(tmp_path)
    assert discover(["b.txt", tmp_path, a, "./a.txt"]) == [
        (tmp_path / "b.txt").resolve(),
        a.resolve(),
    ]


def test_discover_respects_extension_option_for_folders_not_explicit_files(tmp_path):
    txt = write(tmp_path / "a.txt", "a")
    md = write(tmp_path / "b.md", "b")
    options = LoadOptions(extensions=frozenset({".md"}))
    assert discover([tmp_path], options) == [md.resolve()]
    assert discover([txt], options) == [txt.resolve()]


def test_discover_missing_path(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(MissingPathError, match="no such file or folder; check the path") as info:
        discover([missing])
    assert str(missing) in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_discover_explicit_unsupported_file_names_supported_suffixes(tmp_path):
    png = write(tmp_path / "photo.png", b"\x89PNG")
    with pytest.raises(InvalidInputError, match=r"unsupported file type '\.png'") as info:
        discover([png])
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in str(info.value)


def test_file_hash_is_sha256_of_bytes(tmp_path):
    data = b"x" * (3 << 20) + b"tail"  # spans several read blocks
    path = write(tmp_path / "big.txt", data)
    assert file_hash(path) == hashlib.sha256(data).hexdigest()


# --- plain text and markdown ----------------------------------------------------------------


def test_txt_one_record_bom_stripped_newlines_normalised(tmp_path):
    path = write(tmp_path / "a.txt", "\ufeffline one\r\nline two\r\n".encode())
    [record] = load_file(path)
    assert record.text == "line one\nline two\n"
    assert record.id is None
    assert record.metadata == {"format": "txt"}
    assert record.source == str(path.resolve())
    assert record.position == 0


def test_markdown_title_is_first_h1_outside_code(tmp_path):
    path = write(
        tmp_path / "notes.markdown",
        "Intro text\n```\n# not a heading\n```\n## Sub\n# Real Title #\nbody\n",
    )
    [record] = load_file(path)
    assert record.metadata == {"format": "md", "title": "Real Title"}
    assert "# not a heading" in record.text


def test_markdown_without_heading_has_no_title(tmp_path):
    [record] = load_file(write(tmp_path / "a.md", "just text"))
    assert record.metadata == {"format": "md"}


def test_binary_file_is_unreadable(tmp_path):
    path = write(tmp_path / "a.txt", b"abc\x00\x01\x02def")
    with pytest.raises(UnreadableFileError, match="binary.*skipped.*UTF-8") as info:
        load_file(path)
    assert str(path.resolve()) in str(info.value)
    assert isinstance(info.value, InvalidInputError)


def test_undecodable_file_is_unreadable(tmp_path):
    path = write(tmp_path / "a.md", "café".encode("latin-1"))
    with pytest.raises(UnreadableFileError, match="not valid UTF-8.*offset 3.*convert it to UTF-8"):
        load_file(path)


@pytest.mark.parametrize("name", ["empty.txt", "blank.md", "blank.html"])
@pytest.mark.parametrize("content", ["", "  \n\t\n"])
def test_empty_documents(tmp_path, name, content):
    path = write(tmp_path / name, content)
    with pytest.raises(EmptyDocumentError, match="skipped") as info:
        load_file(path)
    assert str(path.resolve()) in str(info.value)


def test_load_file_missing_and_unsupported(tmp_path):
    with pytest.raises(MissingPathError):
        load_file(tmp_path / "gone.txt")
    with pytest.raises(InvalidInputError, match="unsupported"):
        load_file(write(tmp_path / "a.docx", b"PK"))


# --- HTML -----------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title> My   Page </title><style>p { color: red }</style>
<script>var x = "script text";</script></head>
<body>
  <h1>Heading</h1>
  <p>First   paragraph
     spans lines.</p>
  <!-- a comment -->
  <div>Second <b>bold</b> paragraph<br>after break</div>
  <noscript>enable js</noscript><template><p>template text</p></template>
  <ul><li>one</li><li>two</li></ul>
  <script>alert("x")</script>
</body></html>"""


def test_html_visible_text_paragraphs_and_title(tmp_path):
    [record] = load_file(write(tmp_path / "page.htm", HTML))
    assert record.metadata == {"format": "html", "title": "My Page"}
    assert record.text == (
        "My Page\n"
        "Heading\n\n"
        "First paragraph spans lines.\n\n"
        "Second bold paragraph\nafter break\n\n"
        "one\n\ntwo"
    )
    for hidden in ("script text", "alert", "color", "enable js", "template text", "a comment"):
        assert hidden not in record.text


def test_html_honours_declared_charset(tmp_path):
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'
    [record] = load_file(write(tmp_path / "a.html", html.encode("latin-1")))
    assert record.text == "café"


# --- PDF ------------------------------------------------------------------------------------


def test_pdf_pages_joined(tmp_path, make_pdf):
    path = make_pdf(tmp_path / "doc.pdf", ["Page one says hello.", "Page two says goodbye."])
    [record] = load_file(path)
    assert record.text == "Page one says hello.\n\nPage two says goodbye."
    assert record.metadata == {"format": "pdf", "pages": 2}
    assert record.position == 0


def test_corrupt_pdf_is_unreadable(tmp_path):
    path = write(tmp_path / "bad.pdf", b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(UnreadableFileError, match="cannot read this PDF.*skipped"):
        load_file(path)


def test_what_pypdf_logs_goes_into_the_files_warning_not_onto_stderr(tmp_path, make_pdf, capfd):
    not_pdf = write(tmp_path / "notes.pdf", b"this is not a pdf at all\n")
    with pytest.raises(UnreadableFileError, match=r"notes.pdf: cannot read this PDF \(.*; pypdf: invalid pdf header: "
                                                  r"b'this '; EOF marker not found\); skipped"):
        load_file(not_pdf)
    # A file pypdf repairs is read, with one warning that names it and says what pypdf reported.
    good = make_pdf(tmp_path / "good.pdf", ["Hello there, page one."]).read_bytes()
    at = good.rindex(b"startxref\n") + len(b"startxref\n")
    end = good.index(b"\n", at)
    shifted = write(tmp_path / "shifted.pdf", good[:at] + str(int(good[at:end]) + 7).encode() + good[end:])
    with pytest.warns(UserWarning, match=r"shifted.pdf: read in spite of problems; pypdf: incorrect startxref"):
        [record] = load_file(shifted)
    assert record.text == "Hello there, page one."
    assert capfd.readouterr().err == ""


def test_pypdf_messages_of_other_code_still_reach_logging(tmp_path, caplog):
    import logging

    with pytest.raises(UnreadableFileError):
        load_file(write(tmp_path / "notes.pdf", b"this is not a pdf at all\n"))
    with caplog.at_level(logging.WARNING):
        logging.getLogger("pypdf._reader").warning("a message of someone else's pypdf use")
    assert "a message of someone else's pypdf use" in caplog.text


def test_cli_index_prints_one_warning_per_unreadable_pdf(tmp_path):
    import os
    import subprocess
    import sys

    docs = tmp_path / "docs"
    write(docs / "notes.pdf", b"this is not a pdf at all\n")
    write(docs / "ok.txt", "Plain text that indexes fine.")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "semsearch.cli", "index", str(docs), "-c", str(tmp_path / "col"),
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {docs / 'notes.pdf'}: cannot read this PDF")
    assert "invalid pdf header" in lines[0]


def test_encrypted_pdf_is_unreadable(tmp_path, make_pdf):
    import pypdf

    plain = make_pdf(tmp_path / "plain.pdf", ["Secret text."])
    writer = pypdf.PdfWriter(clone_from=str(plain))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    with open(locked, "wb") as stream:
        writer.write(stream)
    with pytest.raises(UnreadableFileError, match="encrypted.*skipped"):
        load_file(locked)


def test_pdf_without_text_is_empty(tmp_path, make_pdf):
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        load_file(make_pdf(tmp_path / "blank.pdf", [""]))


# --- CSV ------------------------------------------------------------------------------------


def test_csv_rows_ids_metadata_and_numbers(tmp_path):
    path = write(
        tmp_path / "rows.csv",
        "\ufeffid,title,text,year,score,zip,note\n"
        "a1,First,hello world,2021,4.5,0042,\n"
        'a2,,"multi\nline, with comma",1999,-3,7,nan\n',
    )
    first, second = load_file(path)
    assert first.id == "a1"
    assert first.text == "First\nhello world"
    assert first.metadata == {"title": "First", "year": 2021, "score": 4.5, "zip": "0042"}
    assert first.position == 2
    assert second.id == "a2"
    assert second.text == "multi\nline, with comma"
    assert second.metadata == {"year": 1999, "score": -3, "zip": 7, "note": "nan"}
    assert second.position == 3
    assert second.source == str(path.resolve())


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_delimiters_are_detected(tmp_path, delimiter):
    path = write(
        tmp_path / "rows.csv",
        f"text{delimiter}tag\nsome, text, with commas{delimiter}x\n",
    )
    [record] = load_file(path)
    assert record.text == "some, text, with commas"
    assert record.metadata == {"tag": "x"}
    assert record.id is None


def test_csv_custom_text_and_id_columns(tmp_path):
    path = write(tmp_path / "rows.csv", "key,body\nk1,the body\n")
    [record] = load_file(path, LoadOptions(text_field="body", id_field="key"))
    assert (record.id, record.text, record.metadata) == ("k1", "the body", {})


def test_csv_missing_text_column_names_available_columns_and_fix(tmp_path):
    path = write(tmp_path / "rows.csv", "body,category\nhello,x\n")
    with pytest.raises(InvalidInputError) as info:
        load_file(path)
    message = str(info.value)
    assert str(path.resolve()) in message
    assert "'text'" in message and "'body'" in message and "'category'" in message
    assert "--text-column NAME" in message


def test_csv_missing_id_column(tmp_path):
    path = write(tmp_path / "rows.csv", "text\nhello\n")
    with pytest.raises(InvalidInputError, match="no column 'key'.*available: 'text'"):
        load_file(path, LoadOptions(id_field="key"))


def test_csv_empty_text_row_names_the_line(tmp_path):
    path = write(tmp_path / "rows.csv", "text,tag\nfine,a\n\n   ,b\n")
    with pytest.raises(InvalidInputError, match=r"rows\.csv:4: column 'text' is empty"):
        load_file(path)


def test_csv_row_with_too_many_fields(tmp_path):
    path = write(tmp_path / "rows.csv", "text,tag\na,b,c\n")
    with pytest.raises(InvalidInputError, match=r"rows\.csv:2: row has 3 fields"):
        load_file(path)


def test_csv_header_only_is_empty(tmp_path):
    with pytest.raises(EmptyDocumentError):
        load_file(write(tmp_path / "rows.csv", "text,tag\n"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12", 12), ("-3", -3), ("+4", 4), ("0", 0), ("1.5", 1.5), ("1e3", 1000.0), (".5", 0.5),
     ("007", "007"), ("01.5", "01.5"), ("1_000", "1_000"), ("nan", "nan"), ("inf", "inf"),
     ("12abc", "12abc"), ("", "")],
)
def test_parse_scalar(raw, expected):
    result = parse_scalar(raw)
    assert result == expected and type(result) is type(expected)


# --- JSONL ----------------------------------------------------------------------------------


def test_jsonl_beir_corpus_lines(tmp_path):
    lines = [
        {"_id": "4380635", "title": "", "text": "Fahrenheit scale.", "metadata": {}},
        {"_id": 17, "title": "Zurich", "text": "A city.", "metadata": {"url": "u", "year": 2020}},
    ]
    path = write(tmp_path / "corpus.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    first, second = load_file(path)
    assert (first.id, first.text, first.metadata, first.position) == (
        "4380635", "Fahrenheit scale.", {"title": ""}, 1,
    )
    assert second.id == "17"
    assert second.text == "Zurich\nA city."
    assert second.metadata == {"url": "u", "year": 2020, "title": "Zurich"}
    assert second.position == 2


def test_jsonl_fields_and_nested_values_kept(tmp_path):
    obj = {"id": "x", "body": "text here", "tags": ["a", "b"], "info": {"k": 1}, "n": 3}
    path = write(tmp_path / "a.jsonl", json.dumps(obj))
    [record] = load_file(path, LoadOptions(text_field="body", title_field=None))
    assert record.id == "x"
    assert record.text == "text here"
    assert record.metadata == {"tags": ["a", "b"], "info": {"k": 1}, "n": 3}


def test_jsonl_without_id_has_none(tmp_path):
    [record] = load_file(write(tmp_path / "a.jsonl", '{"text": "t"}'))
    assert record.id is None


def test_jsonl_malformed_line_is_named(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "ok"}\n\n{"text": "broken"\n')
    with pytest.raises(InvalidInputError) as info:
        load_file(path)
    message = str(info.value)
    assert f"{path.resolve()}:3: not valid JSON (" in message
    assert message.endswith("fix or remove that line")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ('["a list"]', r"a\.jsonl:2: expected a JSON object, got list"),
        ('{"body": "x"}', r"a\.jsonl:2: no field 'text' \(available: 'body'\).*--text-column"),
        ('{"text": "   "}', r"a\.jsonl:2: field 'text' is empty"),
        ('{"text": 42}', r"a\.jsonl:2: field 'text' is int, not text"),
    ],
)
def test_jsonl_bad_objects_name_line_and_field(tmp_path, line, pattern):
    path = write(tmp_path / "a.jsonl", '{"text": "fine"}\n' + line + "\n")
    with pytest.raises(InvalidInputError, match=pattern):
        load_file(path)


def test_jsonl_line_separator_inside_string_is_not_a_line_break(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"text": "one\u2028two"}\n')
    [record] = load_file(path)
    assert record.text == "one\u2028two"


def test_jsonl_blank_file_is_empty(tmp_path):
    with pytest.raises(EmptyDocumentError):
        load_file(write(tmp_path / "a.jsonl", "\n  \n"))


def test_html_without_closing_head_keeps_body_text(tmp_path):
    html = "<html><head><title>T</title><p>Body text survives.</p><p>Second.</p>"
    [record] = load_file(write(tmp_path / "sloppy.html", html))
    assert record.text == "T\nBody text survives.\n\nSecond."


def test_jsonl_explicit_id_field_missing_on_a_line(tmp_path):
    path = write(tmp_path / "a.jsonl", '{"key": "1", "text": "a"}\n{"text": "b"}\n')
    with pytest.raises(InvalidInputError, match=r"a\.jsonl:2: no field 'key'.*as the id"):
        load_file(path, LoadOptions(id_field="key"))


def test_a_csv_cell_longer_than_the_csv_modules_limit_loads_whole(tmp_path):
    """Issue 18, defect 9: a cell over 131,072 characters aborted indexing; long texts are chunked anyway."""
    long_text = "tide " * 60_000  # 300,000 characters
    path = write(tmp_path / "rows.csv", f'text,n\nshort,1\n"{long_text}",2\n')
    records = load_file(path)
    assert [r.text for r in records] == ["short", long_text] and records[1].metadata == {"n": 2}
