"""Object storage for archives and reports: a thin fsspec wrapper, a local folder by default (LEARNAGG_BLOB_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.registry import known_implementations

from learnagg.errors import ConfigurationError, LearnaggError, first_line

PART_SUFFIX = ".part"  # an unfinished local upload; never matches `*.csv.gz` globs of readers


class ObjectStoreError(LearnaggError):
    """The object store cannot be reached, or an object cannot be read, written or deleted."""


def _package_for(url: str) -> str | None:
    """The package that implements the URL's protocol, from fsspec's registry (``s3://`` → ``s3fs``)."""
    protocol = url.split("://", 1)[0] if "://" in url else ""
    spec = known_implementations.get(protocol)
    if not spec:
        return None
    return str(spec["class"]).split(".", 1)[0]


class ObjectStore:
    """Objects addressed by keys (``archived-data/b_c/2021-48-1700000000000.csv.gz``) under one fsspec URL.

    A plain path or ``file://`` URL is a local folder, created on first write; a local upload goes to
    ``<key>.part`` and is renamed into place when complete, so readers never see half a file. Remote stores
    (``s3://``, ``gs://``, …) publish an object when its upload completes; an upload that fails is discarded.
    """

    def __init__(self, url: str) -> None:
        """Resolve ``url`` to an fsspec file system; nothing is contacted yet.

        Raises:
            ConfigurationError: the URL's backend package is not installed, or the protocol is unknown.
        """
        try:
            fs, root = url_to_fs(url)
        except ImportError as exc:
            package = _package_for(url) or "the fsspec backend for this URL"
            raise ConfigurationError(
                f"LEARNAGG_BLOB_URL {url!r} needs the package {package}: pip install {package} ({first_line(exc)})"
            ) from exc
        except ValueError as exc:
            raise ConfigurationError(f"unsupported LEARNAGG_BLOB_URL {url!r}: {first_line(exc)}") from exc
        self.url = url
        self.fs: Any = fs
        self.root: str = str(root).rstrip("/")
        self.local = isinstance(fs, LocalFileSystem)

    def path(self, key: str) -> str:
        """The file-system path of a key.

        Raises:
            ValueError: for an empty or absolute key, or one with a ``..`` segment.
        """
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid object key {key!r}")
        return f"{self.root}/{key}"

    def url_for(self, key: str) -> str:
        """The full URL of a key (``file:///…/key`` for a local folder)."""
        return str(self.fs.unstrip_protocol(self.path(key)))

    def check(self) -> None:
        """Make sure the store can be used: create the local folder, or list the remote root.

        Raises:
            ObjectStoreError: with the reason, when it cannot.
        """
        try:
            if self.local:
                os.makedirs(self.root, exist_ok=True)
                if not os.access(self.root, os.W_OK | os.X_OK):
                    raise PermissionError(f"{self.root} is not writable")
            else:
                self.fs.ls(self.root, detail=False)
        except FileNotFoundError:
            if self.local:
                raise ObjectStoreError(f"cannot use the object store {self.url!r}: {self.root} is missing") from None
        except Exception as exc:  # any backend's connection or permission error, reported in one line
            raise ObjectStoreError(f"cannot use the object store {self.url!r}: {first_line(exc)}") from exc

    @contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """A binary stream whose content becomes the object ``key`` when the block ends without an exception."""
        path = self.path(key)
        if not self.local:
            f = self.fs.open(path, "wb")
            try:
                yield f
            except BaseException:
                discard = getattr(f, "discard", None)
                if discard is not None:
                    discard()  # abort the upload instead of publishing a partial object
                raise
            f.close()
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        part = path + PART_SUFFIX
        try:
            with open(part, "wb") as f:
                yield f
                f.flush()
                # Durable before it is visible: a published archive must survive an OS crash (deletion trusts it).
                os.fsync(f.fileno())
            os.replace(part, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.remove(part)
            raise

    @contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """A binary stream reading the object ``key``.

        Raises:
            ObjectStoreError: the object is missing or cannot be opened.
        """
        try:
            f = self.fs.open(self.path(key), "rb")
        except FileNotFoundError:
            raise ObjectStoreError(f"{key}: no such object in {self.url}") from None
        except OSError as exc:
            raise ObjectStoreError(f"{key}: cannot open: {first_line(exc)}") from exc
        with f:
            yield f

    def exists(self, key: str) -> bool:
        """Whether the object exists."""
        return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int:
        """The object's size in bytes."""
        return int(self.fs.size(self.path(key)))

    def delete(self, key: str) -> None:
        """Remove the object and any unfinished local upload of it; a missing object is not an error."""
        path = self.path(key)
        for candidate in (path, path + PART_SUFFIX) if self.local else (path,):
            with suppress(FileNotFoundError):
                self.fs.rm_file(candidate)

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key under ``prefix`` (a folder-like key prefix), sorted; unfinished uploads are left out."""
        base = self.path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(k for k in (self._key(p) for p in found) if not k.endswith(PART_SUFFIX))

    def glob(self, pattern: str) -> list[str]:
        """Keys matching a glob pattern relative to the root (``archived-data/b_c/*-*-*.csv.gz``), sorted."""
        return sorted(self._key(p) for p in self.fs.glob(self.path(pattern)))

    def _key(self, path: str) -> str:
        path = str(self.fs._strip_protocol(path))
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path


def open_store(url: str) -> ObjectStore:
    """The object store for a URL (setting ``blob_url``)."""
    return ObjectStore(url)
