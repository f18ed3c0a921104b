"""``server.json``: how a running ``semsearch serve`` tells the CLI where it is.

While it serves a local collection, the server keeps ``<collection folder>/server.json``:

    {"url": "http://127.0.0.1:8000", "collection": "docs", "pid": 4242, "instance": "9f1c...",
     "api_key": false, "format": 1}

``semsearch search`` on that folder then asks the server (a warm model and index: milliseconds)
instead of loading everything itself (seconds). It is safe to trust only because of the checks
:func:`find` makes before any connection: the address must be a loopback IP (never a host
name), the process must be alive (a file left by a killed server is ignored without touching
the network), and the answer must carry the same ``instance`` (a random id per server), so a
port reused by another server is not mistaken for this one. A server that needs an API key
for reads says so; the CLI then sends ``$SEMSEARCH_API_KEY`` or searches locally.

This module imports nothing heavy: the CLI reads it before deciding to load the model.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

FILE_NAME = "server.json"
FORMAT = 1
#: The response header carrying the server's instance id.
INSTANCE_HEADER = "x-semsearch-instance"


@dataclass(frozen=True)
class ServerAddress:
    """Where a running server answers for one collection."""

    url: str  # http://127.0.0.1:8000 (loopback IP literal, no path)
    collection: str  # the name it serves this folder under
    pid: int
    instance: str
    api_key: bool  # reads need the API key

    @property
    def search_path(self) -> str:
        return f"/collections/{self.collection}/search"


def loopback_url(url: str) -> bool:
    """True for an ``http://`` URL whose host is a loopback IP literal (127.0.0.0/8 or ::1)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        return parts.scheme == "http" and parts.port is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect_url(host: str, port: int) -> str | None:
    """The loopback URL a local client reaches a server listening on ``host:port`` at, if any.

    Listening on every interface (0.0.0.0 / ::) or on loopback is reachable; a specific
    other address or a host name is not announced (the CLI only ever connects to loopback IPs).
    """
    name = host.strip("[]")
    if name == "localhost":
        name = "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return None
    if ip.is_unspecified:
        ip = ipaddress.ip_address("::1" if ip.version == 6 else "127.0.0.1")
    if not ip.is_loopback:
        return None
    return f"http://[{ip}]:{port}" if ip.version == 6 else f"http://{ip}:{port}"


def write_address(folder: Path, address: ServerAddress) -> Path | None:
    """Write ``folder/server.json`` atomically; None when the folder is not writable (nothing announced)."""
    target = folder / FILE_NAME
    data = {"url": address.url, "collection": address.collection, "pid": address.pid, "instance": address.instance,
            "api_key": address.api_key, "format": FORMAT}
    try:
        fd, tmp = tempfile.mkstemp(prefix=".server-", suffix=".json", dir=folder)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f)
        os.replace(tmp, target)
    except OSError:
        return None
    return target


def withdraw(folder: Path, instance: str) -> None:
    """Remove ``folder/server.json`` if it is still this server's (another may have replaced it)."""
    target = folder / FILE_NAME
    try:
        if json.loads(target.read_text()).get("instance") == instance:
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def find(folder: Path) -> ServerAddress | None:
    """The live server announced in ``folder``, or None (no file, a malformed or foreign file,
    a URL that is not a loopback IP, or a process that is gone). Never touches the network."""
    try:
        data = json.loads((folder / FILE_NAME).read_text())
        address = ServerAddress(str(data["url"]), str(data["collection"]), int(data["pid"]), str(data["instance"]),
                                bool(data["api_key"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if data.get("format") != FORMAT or not loopback_url(address.url) or not address.instance:
        return None
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", address.collection):
        return None
    return address if process_alive(address.pid) else None


def process_alive(pid: int) -> bool:
    """True when a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0 or os.name == "nt":  # on Windows signal 0 is CTRL_C_EVENT: no discovery there
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by another user
        return True
    except OSError:
        return False
    return True
