"""Another process changing a collection while a test serves it: ``semsearch`` commands read from stdin.

    python other_process.py        then one JSON list of arguments per line, e.g. ["reindex", "-c", "COL", ...]

Prints ``READY`` once loaded, and ``DONE <exit code>`` (flushed) after each command has returned, so
the test knows the change is complete (and durable) before it asks its doors again. The commands
run in this one process, as ``semsearch ...`` would, so torch and the models load once.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from semsearch.cli import app

    print("READY", flush=True)
    for line in sys.stdin:
        try:
            code = app(args=json.loads(line), standalone_mode=False, prog_name="semsearch")
        except SystemExit as exc:
            code = exc.code
        print(f"DONE {code or 0}", flush=True)


if __name__ == "__main__":
    main()
