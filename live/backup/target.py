"""A backup target: an fsspec file system and a base path, opened from a URL.

``data/backups`` or ``/srv/backups`` or ``file:///srv/backups``: a local folder; ``s3://bucket/prefix``: S3 or
any S3-compatible store through s3fs; any other ``PROTOCOL://`` fsspec knows (``memory://`` in tests). S3
credentials come from the environment only (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, botocore's usual
chain); the endpoint of an S3-compatible server from ``NAVALE_BACKUP_ENDPOINT_URL``, else ``AWS_ENDPOINT_URL``.
A URL carrying credentials is refused, so none ends up in a shell history or a file of the repo.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["Target", "TargetError", "TargetMissing", "open_target", "default_target_url", "DEFAULT_TARGET", "TARGET_ENV",
           "ENDPOINT_ENV"]

DEFAULT_TARGET = "data/backups"
TARGET_ENV = "NAVALE_BACKUP_TARGET"
ENDPOINT_ENV = "NAVALE_BACKUP_ENDPOINT_URL"


class TargetError(RuntimeError):
    """The target cannot be opened, read or written (one line: the target and the cause)."""


class TargetMissing(TargetError):
    """The target's folder or bucket does not exist (a wrong URL, most likely)."""


def default_target_url(arg: str | None = None) -> str:
    """``arg``, else ``$NAVALE_BACKUP_TARGET``, else ``data/backups`` (relative to the cwd)."""
    return arg or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


def open_target(url: str | None = None) -> Target:
    """The target named by ``url`` (see the module docstring); :class:`TargetError` for a URL it cannot use."""
    url = default_target_url(url)
    protocol, sep, rest = url.partition("://")
    if not sep or protocol == "file":
        path = Path(rest if sep else url).expanduser().resolve()
        from fsspec.implementations.local import LocalFileSystem

        return Target(url, LocalFileSystem(), path.as_posix(), local=True)
    netloc = rest.split("/", 1)[0]
    if "@" in netloc:
        raise TargetError(f"backup target {_redact(url)}: credentials in the URL are refused; set them in the "
                          "environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
    if protocol in ("s3", "s3a"):
        try:
            import s3fs
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise TargetError(f"backup target {url}: s3fs is not installed ({exc})") from None
        endpoint = os.environ.get(ENDPOINT_ENV) or os.environ.get("AWS_ENDPOINT_URL")
        client_kwargs: dict[str, Any] = {"endpoint_url": endpoint} if endpoint else {}
        fs = s3fs.S3FileSystem(client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True)
        base = rest.strip("/")
        if not base:
            raise TargetError(f"backup target {url}: name a bucket (s3://BUCKET/PREFIX)")
        return Target(url, fs, base, local=False)
    try:
        import fsspec

        fs = fsspec.filesystem(protocol)
    except (ImportError, ValueError) as exc:
        raise TargetError(f"backup target {url}: unknown or unavailable protocol {protocol!r} ({exc})") from None
    return Target(url, fs, fs._strip_protocol(url).rstrip("/") or "/", local=False)


def _redact(url: str) -> str:
    protocol, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{protocol}://***@{netloc.rpartition('@')[2]}{slash}{path}"


def _cause(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


class Target:
    """Keys are ``/``-separated paths relative to the target's base (``objects/ab/<sha256>.gz``)."""

    def __init__(self, url: str, fs: Any, base: str, *, local: bool) -> None:
        self.url = url
        self.fs = fs
        self.base = base
        self.local = local

    def __repr__(self) -> str:
        return f"Target({self.url!r})"

    def path(self, key: str) -> str:
        return posixpath.join(self.base, key)

    def _fail(self, what: str, key: str, exc: BaseException) -> TargetError:
        return TargetError(f"backup target {self.url}: cannot {what} {key}: {_cause(exc)}")

    def check(self, *, create: bool) -> None:
        """Make sure the base is usable: created if ``create`` (a local folder), else it must exist."""
        try:
            if self.local:
                if create:
                    Path(self.base).mkdir(parents=True, exist_ok=True)
                elif not Path(self.base).is_dir():
                    raise TargetMissing(f"backup target {self.url}: no such folder ({self.base})")
            else:
                bucket = self.base.split("/", 1)[0]
                if not self.fs.exists(bucket):
                    raise TargetMissing(f"backup target {self.url}: bucket {bucket!r} does not exist or is not readable")
        except TargetError:
            raise
        except Exception as exc:  # noqa: BLE001 - any backend error is one line naming the target
            raise self._fail("open", self.base, exc) from None

    def listing(self, prefix: str) -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix`` (``{}`` when there is none)."""
        full = self.path(prefix)
        try:
            self.fs.invalidate_cache()
            if not self.fs.exists(full):
                return {}
            found = self.fs.find(full, detail=True)
        except Exception as exc:  # noqa: BLE001
            raise self._fail("list", prefix, exc) from None
        base = self.fs._strip_protocol(self.base).rstrip("/") + "/"
        out = {}
        for name, info in found.items():
            name = self.fs._strip_protocol(name)
            if info.get("type", "file") == "file" and name.startswith(base):
                out[name[len(base):]] = int(info.get("size") or 0)
        return out

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self.path(key))
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from None

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[IO[bytes]]:
        """The object's bytes as a file; ``FileNotFoundError`` when it is missing."""
        try:
            fh = self.fs.open(self.path(key), "rb")
        except FileNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self._fail("read", key, exc) from None
        with fh:
            yield fh

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[IO[bytes]]:
        """Write ``key`` so that it appears whole or not at all: a local target writes a temp file, fsyncs and
        renames it; an object store commits its upload on close (and a failed one is removed)."""
        full = self.path(key)
        if self.local:
            tmp = f"{full}.tmp-{uuid.uuid4().hex[:12]}"
            try:
                Path(full).parent.mkdir(parents=True, exist_ok=True)
                fh = open(tmp, "wb")
            except OSError as exc:
                raise self._fail("write", key, exc) from None
            try:
                with fh:
                    yield fh
                    try:
                        fh.flush()
                        os.fsync(fh.fileno())
                    except OSError as exc:
                        raise self._fail("write", key, exc) from None
                try:
                    os.replace(tmp, full)
                except OSError as exc:
                    raise self._fail("write", key, exc) from None
            finally:
                Path(tmp).unlink(missing_ok=True)
            return
        try:
            fh = self.fs.open(full, "wb")
        except Exception as exc:  # noqa: BLE001
            raise self._fail("write", key, exc) from None
        try:
            yield fh
            try:
                fh.close()
            except Exception as exc:  # noqa: BLE001 - the upload is committed here
                raise self._fail("write", key, exc) from None
        except BaseException:
            discard = getattr(fh, "discard", None)
            with contextlib.suppress(Exception):
                if discard is not None:
                    discard()
            with contextlib.suppress(Exception):
                self.fs.rm_file(full)
            raise

    def write_bytes(self, key: str, data: bytes) -> None:
        """``data`` to ``key``, atomically (see :meth:`open_write`)."""
        with self.open_write(key) as fh:
            fh.write(data)

    def remove(self, key: str) -> None:
        """Delete ``key`` (nothing when it is already gone)."""
        try:
            self.fs.rm_file(self.path(key))
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001
            raise self._fail("delete", key, exc) from None
