"""A model tokenizer for counting tokens and reading word pieces, safe to share between threads.

transformers' fast tokenizers keep padding and truncation as settings of one shared Rust
tokenizer, and every call sets them before encoding: a call that counts tokens (no padding)
racing the model's own encode (padding to the longest text) leaves the encode unpadded, and
it fails with "expected sequence of length 26 at dim 1 (got 18)". Everything semsearch does
with a tokenizer besides encoding therefore goes through a private copy whose settings never
change after it is made (padding and truncation off).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokenizers import Tokenizer

from ..errors import InvalidInputError


class PlainTokenizer:
    """A private copy of a fast Hugging Face tokenizer with truncation and padding switched off.

    sentence-transformers' tokenizer comes configured to truncate *and pad* to the model's max
    length (128 for MiniLM); left on, every text would count as exactly that many tokens. The
    copy leaves the model's tokenizer, which encoding keeps using, untouched. ``tokenizer`` is a
    transformers tokenizer (``SentenceTransformer(...).tokenizer``), a ``tokenizers.Tokenizer``,
    the JSON text of one, or another PlainTokenizer; ``unk_token`` names the unknown-word token where the tokenizer
    itself does not say (a bare ``tokenizers.Tokenizer`` of a BPE model).

    Raises:
        InvalidInputError: ``tokenizer`` is not a fast (Rust) Hugging Face tokenizer.
    """

    def __init__(self, tokenizer: Any | str, unk_token: str | None = None) -> None:
        if isinstance(tokenizer, PlainTokenizer):
            self.backend: Tokenizer = tokenizer.backend
            self.unk_token: str | None = tokenizer.unk_token
            return
        if isinstance(tokenizer, str):  # a serialised tokenizer (tokenizer.json's text): parsed once, private
            tokenizer = Tokenizer.from_str(tokenizer)
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self.backend = tokenizer
            self.unk_token = unk_token if unk_token is not None else getattr(tokenizer.model, "unk_token", None)
            return
        backend = tokenizer
        if not isinstance(backend, Tokenizer):
            backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            raise InvalidInputError(
                f"{type(tokenizer).__name__} is not a fast Hugging Face tokenizer; "
                "load the model with a tokenizer.json (use_fast=True)"
            )
        self.backend = Tokenizer.from_str(backend.to_str())
        self.backend.no_truncation()
        self.backend.no_padding()
        unk = unk_token if unk_token is not None else getattr(tokenizer, "unk_token", None)
        if unk is None:
            unk = getattr(self.backend.model, "unk_token", None)
        self.unk_token = unk if isinstance(unk, str) else None

    def count(self, texts: Sequence[str]) -> list[int]:
        """Each text's token count, without special tokens and without truncation."""
        # encode_batch_fast (tokenizers >= 0.20) skips computing offsets we do not need.
        encode = getattr(self.backend, "encode_batch_fast", self.backend.encode_batch)
        return [len(encoding) for encoding in encode(list(texts), add_special_tokens=False)]

    def tokenize(self, text: str) -> list[str]:
        """The word pieces of ``text`` (as transformers' ``tokenizer.tokenize``)."""
        return list(self.backend.encode(text, add_special_tokens=False).tokens)
