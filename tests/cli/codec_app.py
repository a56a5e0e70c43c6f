"""Codec factories for ``dlab --codec tests.cli.codec_app:NAME`` (the key is a test constant)."""

from __future__ import annotations

from engine.codecs import EncryptionCodec
from engine.converter import DataConverter

KEY = bytes(range(32))


def make_codec() -> EncryptionCodec:
    return EncryptionCodec(KEY, key_id="cli")


def make_converter() -> DataConverter:
    return DataConverter(payload_codec=make_codec())


def wrong_key() -> EncryptionCodec:
    return EncryptionCodec(bytes(32), key_id="cli")


def broken() -> EncryptionCodec:
    raise RuntimeError("the key store is unreachable")


def not_a_codec() -> int:
    return 42
