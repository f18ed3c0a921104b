"""A streaming client for OpenAI-compatible chat-completions endpoints, over plain httpx.

Ollama, llama.cpp's server, vLLM, LM Studio and OpenAI all take ``POST {url}/chat/completions``
with ``"stream": true`` and answer with Server-Sent Events, one JSON chunk per ``data:`` line
and ``data: [DONE]`` at the end. Failures become :mod:`semsearch.errors` classes whose
messages say what to do.

A prompt is never cut silently. Where the server reports its context size (llama.cpp's
``llama-server``: ``GET /props``; vLLM: ``max_model_len`` in ``/models``) and can count tokens
(``POST /tokenize``; llama-cpp-python: ``POST /extras/tokenize/count``), a prompt that would
leave less than ``max_tokens`` for the answer is refused before it is sent
(:class:`ContextOverflowError`: ``ask`` then retries with fewer passages). Some servers
(llama-cpp-python) shorten the answer instead of failing when the prompt nearly fills the
window: an answer that stops for length (``finish_reason: "length"``) is reported as cut short.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ContextOverflowError, InvalidInputError, LLMError, LLMTimeoutError, LLMUnavailableError

#: Tokens a chat template adds around each message (role markers, turn delimiters): an over-estimate.
_TEMPLATE_TOKENS = 8
#: Environment variable holding the endpoint's API key (never taken from the command line).
API_KEY_ENV = "SEMSEARCH_LLM_API_KEY"
# How servers word "the prompt is longer than the context window" (OpenAI, vLLM, llama.cpp, LM Studio).
_OVERFLOW = re.compile(
    r"context[ _](length|window|size)|maximum context|n_ctx|exceed(s|ed)?[ _]context"
    r"|too many tokens|prompt is too long",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ChatSettings:
    """Where and how to reach the language model.

    Attributes:
        url: the API base, e.g. ``http://127.0.0.1:8080/v1`` (``/chat/completions`` is appended;
            a URL already ending in it is used as it is).
        model: the model name to request; None asks the server (``GET {url}/models``) and
            takes the first it lists.
        api_key: sent as ``Authorization: Bearer``; None reads ``$SEMSEARCH_LLM_API_KEY``.
        timeout: seconds to wait for the first byte and between streamed pieces.
        connect_timeout: seconds to wait for the connection.
        max_tokens: longest answer to ask for.
        temperature: sampling temperature (low: answers stick to the sources).
    """

    url: str
    model: str | None = None
    api_key: str | None = None
    timeout: float = 120.0
    connect_timeout: float = 5.0
    max_tokens: int = 512
    temperature: float = 0.1

    def __post_init__(self) -> None:
        if not re.match(r"^https?://[^\s/]+", self.url or ""):
            raise InvalidInputError(
                f"LLM URL {self.url!r} is not an http(s) URL; give the API base, e.g. http://127.0.0.1:8080/v1"
            )
        if self.timeout <= 0 or self.connect_timeout <= 0:
            raise InvalidInputError("LLM timeouts must be positive numbers of seconds")
        if self.max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be at least 1, got {self.max_tokens}")

    @property
    def base(self) -> str:
        return self.url.rstrip("/").removesuffix("/chat/completions")


class ChatClient:
    """Streams chat completions from one endpoint; one client can serve many requests (threads)."""

    def __init__(self, settings: ChatSettings, *, transport: Any = None) -> None:
        import httpx

        self.settings = settings
        key = settings.api_key if settings.api_key is not None else os.environ.get(API_KEY_ENV)
        headers = {"Accept": "text/event-stream"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            headers=headers, transport=transport,
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        )
        self._model = settings.model
        self._window: int | None | bool = False  # False: not asked yet
        self._counter: str | None | bool = False  # the server's token-counting path; None: it has none

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def model(self) -> str:
        """The model name requests use (asked from the server once when not configured).

        Raises:
            LLMUnavailableError, LLMTimeoutError, LLMError: as :meth:`stream`.
        """
        if self._model is None:
            data = self._request_json("GET", "/models")
            models = [m.get("id") for m in (data.get("data") or []) if isinstance(m, dict) and m.get("id")]
            if not models:
                raise LLMError(f"{self.settings.base}/models lists no model; name one with --llm-model")
            self._model = str(models[0])
        return self._model

    @property
    def root(self) -> str:
        """The server's root URL (the API base without its ``/v1``): where llama.cpp's own endpoints live."""
        return re.sub(r"/v1$", "", self.settings.base)

    def context_window(self) -> int | None:
        """The context size (tokens) the server runs the model with, where it reports one; asked once."""
        if self._window is False:
            self._window = _window_of(self._get_json(f"{self.root}/props"), self._get_json(f"{self.settings.base}"
                                                                                           "/models"), self._model)
        return self._window if isinstance(self._window, int) else None

    def count_tokens(self, text: str) -> int | None:
        """``text``'s length in the model's own tokens, where the server can count them, else None."""
        import httpx

        probes = [("/tokenize", {"content": text}), ("/extras/tokenize/count", {"input": text})]
        if isinstance(self._counter, str):
            probes = [p for p in probes if p[0] == self._counter]
        elif self._counter is None:
            return None
        for path, payload in probes:
            body = {**payload, "model": self.model} if path.startswith("/extras") else payload
            try:
                response = self._http.post(f"{self.root}{path}", json=body, headers={"Accept": "application/json"})
                data = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                data = None
            count = data.get("count") if isinstance(data, dict) else None
            if isinstance(data, dict) and isinstance(data.get("tokens"), list):
                count = len(data["tokens"])
            if isinstance(count, int):
                self._counter = path
                return count
        self._counter = None
        return None

    def check_fits(self, messages: list[dict[str, str]]) -> None:
        """Raise ContextOverflowError when the server's context window cannot hold the prompt and
        ``max_tokens`` of answer (only where the server tells its window and counts tokens)."""
        window = self.context_window()
        if window is None:
            return
        counted = self.count_tokens("\n".join(m["content"] for m in messages))
        if counted is None:
            return
        prompt = counted + _TEMPLATE_TOKENS * len(messages)
        if prompt + self.settings.max_tokens > window:
            raise ContextOverflowError(
                f"the prompt takes about {prompt} tokens and the answer up to {self.settings.max_tokens}, more than "
                f"the {window}-token context the model at {self.settings.base} runs with")

    def stream(self, messages: list[dict[str, str]], report: dict[str, Any] | None = None) -> Iterator[str]:
        """The answer's text, piece by piece, as the server streams it.

        ``report``, when given, receives ``finish_reason`` (``"length"``: the answer was cut at
        ``max_tokens`` or the end of the context window) and ``pieces`` (how many were streamed).

        Raises:
            LLMUnavailableError: nothing answers at the URL.
            LLMTimeoutError: no answer, or a pause in the stream, longer than ``timeout``.
            ContextOverflowError: the prompt is longer than the context window leaves room for (the
                server says so, or reported its window: :meth:`check_fits`).
            LLMError: any other refusal (bad key, unknown model, a malformed stream).
        """
        import httpx

        report = report if report is not None else {}
        report.update(finish_reason=None, pieces=0)
        try:
            self.check_fits(messages)
        except httpx.HTTPError:
            pass  # a server that cannot say: its own answer tells
        body = {
            "model": self.model, "messages": messages, "stream": True,
            "max_tokens": self.settings.max_tokens, "temperature": self.settings.temperature,
        }
        url = f"{self.settings.base}/chat/completions"
        try:
            for _ in range(2):
                finished = produced = False
                try:
                    with self._http.stream("POST", url, json=body) as response:
                        if response.status_code >= 400:
                            response.read()
                            raise _status_error(response.status_code, response.text, url)
                        for line in response.iter_lines():
                            piece = _data(line)
                            if piece is None:
                                continue
                            if piece == "[DONE]":
                                return
                            text, last = _delta(piece, url)
                            if last:
                                report["finish_reason"] = last
                            finished = finished or bool(last)
                            if text:
                                produced = True
                                report["pieces"] += 1
                                yield text
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    if produced:
                        raise
                if finished:
                    return
                if produced:
                    raise LLMError(f"{url} ended the stream before the answer was complete; try again")
                # Nothing came: some servers (llama-cpp-python) fail after sending 200 and end or drop
                # the stream; the same request without streaming, one token long, says why. If it is
                # accepted, the stream was lost on the way (a dropped kept-alive connection): once more.
                self._check_accepted(body, url)
            raise LLMError(f"{url} ended the stream twice without an answer")
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(
                f"the language model at {self.settings.base} did not answer within {self.settings.timeout:g} s "
                f"({type(exc).__name__}); raise --llm-timeout or use a faster model"
            ) from None
        except httpx.TransportError as exc:
            raise _unreachable(self.settings.base, exc) from None

    def _check_accepted(self, body: dict[str, Any], url: str) -> None:
        import httpx

        probe = {**body, "stream": False, "max_tokens": 1}
        try:
            response = self._http.post(url, json=probe, headers={"Accept": "application/json"})
        except (httpx.ReadError, httpx.RemoteProtocolError):  # the failed stream's connection: afresh
            response = self._http.post(url, json=probe, headers={"Accept": "application/json"})
        if response.status_code >= 400:
            raise _status_error(response.status_code, response.text, url)

    def _request_json(self, method: str, path: str) -> dict[str, Any]:
        import httpx

        url = f"{self.settings.base}{path}"
        try:
            response = self._http.request(method, url, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise LLMTimeoutError(f"the language model at {self.settings.base} did not answer within "
                                  f"{self.settings.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise _unreachable(self.settings.base, exc) from None
        if response.status_code >= 400:
            raise _status_error(response.status_code, response.text, url)
        try:
            data = response.json()
        except ValueError:
            raise LLMError(f"{url} did not answer JSON; is --llm-url an OpenAI-compatible API base?") from None
        return data if isinstance(data, dict) else {}


    def _get_json(self, url: str) -> Any:
        """The JSON a GET answers, or None (no such endpoint, not JSON, no answer)."""
        import httpx

        try:
            response = self._http.get(url, headers={"Accept": "application/json"})
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None


def _window_of(props: Any, models: Any, model: str | None) -> int | None:
    """The runtime context size in llama.cpp's ``/props`` or a vLLM-style ``/models`` listing, if any."""
    if isinstance(props, dict):
        for holder in (props, props.get("default_generation_settings")):
            if isinstance(holder, dict) and isinstance(holder.get("n_ctx"), int) and holder["n_ctx"] > 0:
                return int(holder["n_ctx"])
    entries = models.get("data") if isinstance(models, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and (model is None or entry.get("id") == model):
            size = entry.get("max_model_len")
            if isinstance(size, int) and size > 0:
                return size
    return None


def _unreachable(base: str, exc: Exception) -> LLMUnavailableError:
    return LLMUnavailableError(
        f"cannot reach the language model at {base} ({type(exc).__name__}: {exc}); start the server or fix --llm-url"
    )


def _data(line: str) -> str | None:
    # Server-Sent Events: only "data:" lines carry chunks; comments (":") and other fields are skipped.
    if not line.startswith("data:"):
        return None
    return line[5:].strip() or None


def _delta(payload: str, url: str) -> tuple[str, str | None]:
    """The text a streamed chunk adds, and its ``finish_reason`` when it ends the answer."""
    try:
        chunk = json.loads(payload)
    except ValueError:
        raise LLMError(f"{url} streamed something that is not JSON: {payload[:200]!r}") from None
    if isinstance(chunk, dict) and chunk.get("error"):
        message = _message_of(chunk)
        if _OVERFLOW.search(message):
            raise ContextOverflowError(message)
        raise LLMError(f"the language model failed while answering: {message}")
    try:
        choice = chunk["choices"][0]
    except (KeyError, IndexError, TypeError):
        return "", None  # e.g. a final usage-only chunk
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    reason = choice.get("finish_reason")
    return (content if isinstance(content, str) else ""), (str(reason) if reason else None)


def _message_of(data: Any) -> str:
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)[:500]
    if isinstance(error, str):
        return error[:500]
    if isinstance(data, dict) and data.get("detail"):
        return str(data["detail"])[:500]
    return str(data)[:500]


def _status_error(status: int, text: str, url: str) -> LLMError:
    try:
        message = _message_of(json.loads(text))
    except ValueError:
        message = text.strip()[:500] or f"HTTP {status}"
    if _OVERFLOW.search(message):
        return ContextOverflowError(message)
    if status in (401, 403):
        return LLMError(f"{url} refused the API key (HTTP {status}): {message}; set ${API_KEY_ENV}")
    if status == 404:
        return LLMError(
            f"{url} answered 404 ({message}); --llm-url should be the API base of an OpenAI-compatible server, "
            "e.g. http://127.0.0.1:8080/v1, and --llm-model a model it serves"
        )
    return LLMError(f"{url} answered HTTP {status}: {message}")
