"""Payload codecs: encryption, compression, and a chain of codecs.

Give a codec to the client's data converter; the client and its workers then encode every
payload before it reaches the database and decode it when reading::

    from engine.codecs import CodecChain, CompressionCodec, EncryptionCodec
    from engine.converter import DataConverter

    key = EncryptionCodec.generate_key()       # keep it outside the database (a secret store)
    codec = CodecChain(CompressionCodec(), EncryptionCodec(key, key_id="2026-01"))
    client = await Client.connect("app.db", data_converter=DataConverter(payload_codec=codec))

:class:`EncryptionCodec` writes the envelope Temporal's encryption samples write (encoding
``binary/encrypted``, the key id in ``encryption-key-id``, data = 12-byte nonce + AES-GCM
ciphertext of the protobuf-serialized payload), so a Temporal codec server holding the same key
reads histories encrypted here, and the other way round.
"""

from __future__ import annotations

import os
import zlib
from typing import Any, Mapping, Sequence

from engine.converter import Payload, PayloadCodec
from engine.errors import PayloadError

__all__ = ["EncryptionCodec", "CompressionCodec", "CodecChain"]

_NONCE_BYTES = 12


class EncryptionCodec(PayloadCodec):
    """AES-GCM encryption of every payload (authenticated: tampering is detected).

    ``key`` is 16, 24 or 32 random bytes (:meth:`generate_key` makes a 32-byte one). Payloads
    carry the id of the key that encrypted them; ``previous_keys`` (id -> key) still decrypt
    payloads written before a key rotation. Payloads that are not encrypted pass through
    ``decode``, so runs recorded before encryption was turned on stay readable.

    Needs the ``cryptography`` package (``pip install 'durable-lab[encryption]'``).
    """

    encoding = b"binary/encrypted"
    key_id_metadata = "encryption-key-id"

    def __init__(self, key: bytes, *, key_id: str = "default", previous_keys: Mapping[str, bytes] | None = None) -> None:
        aesgcm = _aesgcm_class()
        keys = {**(previous_keys or {}), key_id: key}
        problems = [
            f"key {name!r} is {len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__}"
            for name, value in keys.items()
            if not isinstance(value, (bytes, bytearray)) or len(value) not in (16, 24, 32)
        ]
        if problems:
            raise ValueError(
                f"EncryptionCodec needs AES keys of 16, 24 or 32 bytes, but {', '.join(problems)}: "
                "make one with EncryptionCodec.generate_key() and keep it out of the database."
            )
        if not key_id:
            raise ValueError("EncryptionCodec needs a non-empty key_id: payloads record which key encrypted them.")
        self.key_id = key_id
        self._ciphers = {name: aesgcm(bytes(value)) for name, value in keys.items()}

    def __repr__(self) -> str:
        return f"EncryptionCodec(key_id={self.key_id!r})"  # never the key

    @staticmethod
    def generate_key() -> bytes:
        """A new random 256-bit key."""
        return os.urandom(32)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.key_id]
        metadata = {"encoding": self.encoding, self.key_id_metadata: self.key_id.encode()}
        out = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)  # never reused: random 96-bit nonces, one per payload
            out.append(Payload(dict(metadata), nonce + cipher.encrypt(nonce, payload.SerializeToString(), None)))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        from cryptography.exceptions import InvalidTag

        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != self.encoding:
                out.append(payload)
                continue
            key_id = payload.metadata.get(self.key_id_metadata, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                known = ", ".join(repr(k) for k in self._ciphers)
                raise PayloadError(
                    f"A payload was encrypted with key {key_id!r}, which this codec does not have (it has {known}). "
                    "Pass that key: EncryptionCodec(current_key, key_id=..., previous_keys={" + repr(key_id) + ": old_key})."
                )
            data = payload.data
            try:
                clear = cipher.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], None)
            except InvalidTag:
                raise PayloadError(
                    f"A payload encrypted with key {key_id!r} does not decrypt: the key is not the one that "
                    "encrypted it, or the stored data was changed."
                ) from None
            out.append(Payload.FromString(clear))
        return out


def _aesgcm_class() -> Any:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ImportError(
            "EncryptionCodec needs the 'cryptography' package: pip install 'durable-lab[encryption]' "
            "(or pip install cryptography)."
        ) from None
    return AESGCM


class CompressionCodec(PayloadCodec):
    """zlib compression of payloads of at least ``min_size`` bytes, kept only when smaller.

    Put it before an encryption codec in a :class:`CodecChain`: encrypted data does not compress.
    """

    encoding = b"binary/zlib"

    def __init__(self, *, min_size: int = 64, level: int = 6) -> None:
        self.min_size = min_size
        self.level = level

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            raw = payload.SerializeToString()
            packed = zlib.compress(raw, self.level) if len(raw) >= self.min_size else raw
            out.append(Payload({"encoding": self.encoding}, packed) if len(packed) < len(raw) else payload)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for payload in payloads:
            if payload.metadata.get("encoding") != self.encoding:
                out.append(payload)
                continue
            try:
                out.append(Payload.FromString(zlib.decompress(payload.data)))
            except zlib.error as e:
                raise PayloadError(f"A binary/zlib payload does not decompress ({e}): the stored data is damaged.") from None
        return out


class CodecChain(PayloadCodec):
    """Several codecs as one: ``encode`` runs them in order, ``decode`` in reverse order."""

    def __init__(self, *codecs: PayloadCodec) -> None:
        if not codecs:
            raise ValueError("CodecChain needs at least one codec, e.g. CodecChain(CompressionCodec(), EncryptionCodec(key)).")
        self.codecs = codecs

    def __repr__(self) -> str:
        return f"CodecChain({', '.join(repr(c) for c in self.codecs)})"

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in self.codecs:
            out = await codec.encode(out)
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = list(payloads)
        for codec in reversed(self.codecs):
            out = await codec.decode(out)
        return out
