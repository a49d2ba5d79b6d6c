"""Zipping report files (docs/batch.md#exhaust-reports, docs/reference/compatibility.md#12): plain, AES-256 (pyzipper)
or legacy ZipCrypto."""

from __future__ import annotations

import os
import secrets
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import IO, Any, Literal

import pyzipper
from pyzipper.zipfile_aes import AESZipInfo, BaseZipEncrypter

Encryption = Literal["aes256", "zipcrypto"]
CHUNK = 1 << 20
ZIP64_FROM = 1 << 31  # entries this large get zip64 headers up front: a streamed zip cannot go back to add them
_DATA_DESCRIPTOR = 0x08


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC = _crc_table()


class ZipCryptoEncrypter(BaseZipEncrypter):
    """Traditional PKWARE encryption ("ZipCrypto"), which pyzipper reads but does not write.

    It is weak (docs/reference/compatibility.md#12) and only offered for older unzip programs. The entry is written with
    a data descriptor, so the 12-byte header's check byte is the high byte of the DOS time, as the format says for
    streamed entries (the CRC is not known when the header is written).
    """

    def __init__(self, pwd: bytes) -> None:
        """Start the key schedule from the password."""
        if not pwd:
            raise RuntimeError("ZipCrypto encryption requires a password.")
        self._k0, self._k1, self._k2 = 305419896, 591751049, 878082192
        for byte in pwd:
            self._update(byte)
        self._check = 0

    def _update(self, byte: int) -> None:
        self._k0 = (self._k0 >> 8) ^ _CRC[(self._k0 ^ byte) & 0xFF]
        self._k1 = ((self._k1 + (self._k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        self._k2 = (self._k2 >> 8) ^ _CRC[(self._k2 ^ (self._k1 >> 24)) & 0xFF]

    def update_zipinfo(self, zipinfo: Any) -> None:
        """Mark the entry as streamed (data descriptor) and remember the check byte."""
        zipinfo.flag_bits |= _DATA_DESCRIPTOR
        self._check = (zipinfo.get_dostime() >> 8) & 0xFF

    def finalize_zipinfo(self, zipinfo: Any) -> None:
        """Nothing to add once the entry is written."""

    def encryption_header(self) -> bytes:
        """Eleven random bytes and the check byte, encrypted."""
        return self.encrypt(secrets.token_bytes(11) + bytes([self._check]))

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt a block (a plain Python loop: about 5 MB/s, acceptable for a legacy option)."""
        out = bytearray(len(data))
        k0, k1, k2, crc = self._k0, self._k1, self._k2, _CRC
        for i, byte in enumerate(data):
            t = (k2 | 2) & 0xFFFF
            out[i] = byte ^ (((t * (t ^ 1)) >> 8) & 0xFF)
            k0 = (k0 >> 8) ^ crc[(k0 ^ byte) & 0xFF]
            k1 = ((k1 + (k0 & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
            k2 = (k2 >> 8) ^ crc[(k2 ^ (k1 >> 24)) & 0xFF]
        self._k0, self._k1, self._k2 = k0, k1, k2
        return bytes(out)


class _ZipCryptoFile(pyzipper.ZipFile):  # type: ignore[misc]
    def get_encrypter(self) -> BaseZipEncrypter:
        return ZipCryptoEncrypter(self.pwd)


class _Unseekable:
    """A write-only view of a stream: zip entries are then streamed with data descriptors, never rewritten in place,
    which every object store accepts (an fsspec upload cannot seek)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._pos = 0

    def write(self, data: bytes) -> int:
        self._raw.write(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._raw.flush()


@contextmanager
def _archive(out: IO[bytes], password: str | None, encryption: Encryption) -> Iterator[Any]:
    target = _Unseekable(out)
    if not password:
        zf: Any = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED)  # type: ignore[call-overload]
    elif encryption == "zipcrypto":
        zf = _ZipCryptoFile(target, "w", compression=zipfile.ZIP_DEFLATED)
        zf.setpassword(password.encode("utf-8"))
        zf.setencryption("zipcrypto")  # makes pyzipper ask `get_encrypter` for each entry
    else:
        zf = pyzipper.AESZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, encryption=pyzipper.WZ_AES)
        zf.setpassword(password.encode("utf-8"))
        zf.setencryption(pyzipper.WZ_AES, nbits=256)
    with zf:
        yield zf


def write_zip(
    source: IO[bytes],
    out: IO[bytes],
    entry_name: str,
    *,
    size: int,
    modified: datetime,
    password: str | None = None,
    encryption: Encryption = "aes256",
) -> None:
    """Stream ``source`` into a zip with one deflated entry named ``entry_name``, written to ``out``.

    Args:
        source: the entry's bytes (read to its end, a chunk at a time).
        out: where the zip goes (need not be seekable).
        entry_name: the name of the single entry.
        size: the entry's size in bytes (chooses zip64 headers for large files).
        modified: the entry's modification time (local time of the report zone).
        password: protects the entry when given (docs/batch.md#exhaust-reports).
        encryption: ``aes256`` (WinZip AES, 256-bit keys) or ``zipcrypto`` (legacy, weak).
    """
    info_cls: Any = zipfile.ZipInfo
    if password:
        info_cls = AESZipInfo if encryption == "aes256" else pyzipper.ZipInfo
    info = info_cls(entry_name, date_time=modified.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.file_size = size
    with _archive(out, password, encryption) as zf, zf.open(info, "w", force_zip64=size >= ZIP64_FROM) as entry:
        while block := source.read(CHUNK):
            entry.write(block)


def read_entry(path_or_stream: str | os.PathLike[str] | IO[bytes], password: str | None = None) -> tuple[str, bytes]:
    """The name and bytes of a zip's single entry (AES, ZipCrypto or plain): for tests and checks.

    Raises:
        RuntimeError: the entry is encrypted and no password, or a wrong one, was given.
    """
    with pyzipper.AESZipFile(path_or_stream) as zf:
        if password:
            zf.setpassword(password.encode("utf-8"))
        name = zf.namelist()[0]
        return name, zf.read(name)
