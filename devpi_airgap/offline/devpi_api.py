"""Minimal synchronous client for devpi-server's HTTP API.

Protocol (checked against devpi-server 6.20 / devpi-client 7.3 sources):

* ``POST /+login`` with JSON ``{"user", "password"}`` answers
  ``{"result": {"password": <token>, "expiration": <seconds>}}``; later requests
  authenticate with ``X-Devpi-Auth: base64("<user>:<token>")``.
* ``PUT /<user>`` with JSON ``{"password": ...}`` creates a user (409 if it exists).
* ``PUT /<user>/<index>`` with JSON index config creates an index (409 if it
  exists); ``PATCH`` with the full config modifies it; ``GET`` with
  ``Accept: application/json`` and ``?no_projects`` reads the config.
* Uploads are PyPI-style multipart ``POST /<user>/<index>/`` with
  ``:action=file_upload``, ``name``, ``version`` (must appear in the filename),
  the core metadata fields, and the file as ``content``.  The server registers
  the release metadata itself on ``file_upload``; no separate ``submit`` step is
  needed.  A different file under an existing name on a non-volatile index gets
  409; an identical one gets 200.
* File listing: ``GET /<user>/<index>/+simple/`` and ``.../+simple/<project>/``
  as PEP 691 JSON (``application/vnd.pypi.simple.v1+json``), which carries
  ``hashes.sha256`` for every file.  There is no single-request listing of all
  files with hashes, so the per-project pages are fetched concurrently.
"""

from __future__ import annotations

import base64
import threading
import zipfile
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Callable, Iterable

import httpx
from packaging.utils import canonicalize_name

from devpi_airgap.core.errors import RemoteError
from devpi_airgap.core.files import sha256_file
from devpi_airgap.core.pools import stoppable_pool

JSON = "application/json"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# concurrent per-project listing requests; measured on 138 projects: 1 -> 1.35s,
# 4 -> 0.75s, 8 -> 0.74s, 16 -> 0.71s (the server is the limit)
LIST_WORKERS = 8

# METADATA header -> devpi-server form field, where they differ from
# ``header.lower().replace("-", "_")`` (devpi-server's PrivateStage.metadata_keys).
_FIELD_NAMES = {
    "classifier": "classifiers",
    "project_url": "project_urls",
    "provides_extra": "provides_extras",
}


class DevpiError(RemoteError):
    """A devpi-server request failed; ``status`` is the HTTP status (or None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class UploadResult:
    todo: list[Path] = field(default_factory=list)  # files the index lacks, still to upload
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    bytes_uploaded: int = 0


def _server_message(response: httpx.Response) -> str:
    # API errors: JSON {"message": ...}; upload errors (pyramid HTTPException):
    # the text is in "title" (JSON) and in the HTTP reason phrase.
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    for candidate in (body.get("message"), body.get("title"), response.reason_phrase, response.text[:200]):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "(no message)"


def _wheel_metadata(path: Path) -> dict[str, str | list[str]]:
    """Form fields for ``file_upload`` from the wheel's ``*.dist-info/METADATA``."""
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        if len(names) != 1:
            raise DevpiError(f"{path.name}: no unique .dist-info/METADATA in wheel")
        msg = HeaderParser().parsestr(zf.read(names[0]).decode("utf-8"))
    fields: dict[str, str | list[str]] = {}
    for header, value in msg.items():
        key = header.lower().replace("-", "_")
        key = _FIELD_NAMES.get(key, key)
        if key in fields:
            previous = fields[key]
            fields[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            fields[key] = value
    body = msg.get_payload()
    if body and "description" not in fields:
        fields["description"] = body
    if "name" not in fields or "version" not in fields:
        raise DevpiError(f"{path.name}: METADATA lacks Name or Version")
    return fields


def seed_forms(paths: Iterable[Path], sha256: Callable[[Path], str]) -> dict[str, dict]:
    """filename -> the form an upload of that wheel sends, plus its sha256: what `programs.seed_index` imports."""
    return {path.name: {**_wheel_metadata(path), "sha256_digest": sha256(path)} for path in paths}


class _UploadStopped(Exception):
    """The run is stopping (Ctrl-C): an upload under way gives up at its next piece."""


class _StoppableFile:
    """A file httpx reads a piece at a time to send it; it stops sending once `stopping` is set.

    Without it, a Ctrl-C waited for every upload under way: a 50 MB wheel takes minutes on a slow link.
    The server keeps nothing of an upload cut short, so the next run sends the file again.
    """

    def __init__(self, file, stopping: threading.Event):
        self.file = file
        self.stopping = stopping

    def read(self, size: int = -1) -> bytes:
        if self.stopping.is_set():
            raise _UploadStopped
        return self.file.read(size)

    # what httpx asks of a file to send its length (Content-Length) and rewind it
    def fileno(self) -> int:
        return self.file.fileno()

    def tell(self) -> int:
        return self.file.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)


class DevpiClient:
    def __init__(self, base_url: str, *, timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.stopping = threading.Event()  # set when the run stops: uploads under way give up
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Accept": JSON},
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DevpiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _request(self, what: str, method: str, url: str, *, ok=(200,), **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            raise DevpiError(f"{what}: {type(e).__name__}: {e}") from None
        if response.status_code not in ok:
            raise DevpiError(
                f"{what}: HTTP {response.status_code}: {_server_message(response)}",
                response.status_code,
            )
        return response

    def status(self) -> dict:
        """Server status from ``/+status``; raises DevpiError if this isn't devpi-server."""
        response = self._request("status", "GET", "/+status")
        try:
            result = response.json()["result"]
            result["versioninfo"]["devpi-server"]
        except (ValueError, KeyError, TypeError):
            raise DevpiError(f"status: {self.base_url} does not look like devpi-server") from None
        return result

    def login(self, user: str, password: str) -> None:
        response = self._request(
            f"login as {user!r}",
            "POST",
            "/+login",
            json={"user": user, "password": password},
        )
        token = response.json()["result"]["password"]
        self._http.headers["X-Devpi-Auth"] = base64.b64encode(f"{user}:{token}".encode()).decode("ascii")

    def logs_in(self, user: str, password: str) -> bool:
        """Whether devpi takes this password for `user`; this client stays logged in as it was."""
        response = self._request(
            f"login as {user!r}", "POST", "/+login", json={"user": user, "password": password}, ok=(200, 401)
        )
        return response.status_code == 200

    def set_password(self, user: str, password: str) -> None:
        """Give `user` this password; the client must be logged in as root (or as that user)."""
        self._request(f"set the password of {user!r}", "PATCH", f"/{user}", json={"password": password})

    def user_exists(self, user: str) -> bool:
        return self._request(f"read user {user!r}", "GET", f"/{user}", ok=(200, 404)).status_code == 200

    def index_config(self, user: str, index: str) -> dict | None:
        """The index's configuration, or None when there is no such index."""
        name = f"{user}/{index}"
        response = self._request(f"read index {name}", "GET", f"/{name}", params={"no_projects": ""}, ok=(200, 404))
        return response.json()["result"] if response.status_code == 200 else None

    def ensure_user(self, user: str, password: str) -> bool:
        """Create ``user``; False if it already exists (left unchanged)."""
        response = self._request(
            f"create user {user!r}",
            "PUT",
            f"/{user}",
            json={"password": password},
            ok=(201, 409),
        )
        return response.status_code == 201

    def ensure_index(self, user: str, index: str, *, bases: Iterable[str] = (), volatile: bool = False) -> bool:
        """Create or reconfigure a stage index; True if something changed."""
        wanted = {"bases": list(bases), "volatile": volatile}
        name = f"{user}/{index}"
        config = self.index_config(user, index)
        if config is None:
            self._request(f"create index {name}", "PUT", f"/{name}", json={"type": "stage", **wanted})
            return True
        if index_matches(config, bases=bases, volatile=volatile):
            return False
        self._request(f"modify index {name}", "PATCH", f"/{name}", json={**config, **wanted})
        return True

    def index_files(self, user: str, index: str) -> dict[str, str]:
        """filename -> sha256 of every file on the index (its own files, not its bases'); none for no index."""
        name = f"{user}/{index}"
        headers = {"Accept": SIMPLE_JSON}
        listing = self._request(f"list projects of {name}", "GET", f"/{name}/+simple/", headers=headers, ok=(200, 404))
        if listing.status_code == 404:
            return {}
        projects = listing.json()["projects"]

        def files_of(project: str) -> dict[str, str]:
            return {f["filename"]: f["hashes"].get("sha256", "") for f in self._project_files(name, project) or []}

        result: dict[str, str] = {}
        with stoppable_pool(LIST_WORKERS) as pool:
            for files in pool.map(files_of, [p["name"] for p in projects]):
                result.update(files)
        return result

    def _project_files(self, name: str, project: str) -> list[dict] | None:
        """The files of one project on index `name` (PEP 691 JSON), or None when the index has no such project."""
        page = self._request(
            f"list files of {project} on {name}",
            "GET",
            f"/{name}/+simple/{project}/",
            headers={"Accept": SIMPLE_JSON},
            ok=(200, 404),
        )
        return page.json()["files"] if page.status_code == 200 else None

    def remove_file(self, user: str, index: str, filename: str) -> bool:
        """Delete one release file from a (non-volatile) index, as a recall must; False if it was not there."""
        name = f"{user}/{index}"
        project = canonicalize_name(filename.split("-")[0])
        entry = next((f for f in self._project_files(name, project) or [] if f["filename"] == filename), None)
        if entry is None:
            return False
        url = httpx.URL(f"{self.base_url}/{name}/+simple/{project}/").join(entry["url"]).copy_with(fragment=None)
        # `force`: devpi refuses deletes on a non-volatile index otherwise, which is what keeps uploads immutable.
        self._request(f"remove {filename} from {name}", "DELETE", str(url), params={"force": ""})
        return True

    def upload_file(self, user: str, index: str, path: str | Path) -> None:
        """Upload one wheel like ``devpi upload`` does (metadata is registered with it)."""
        path = Path(path)
        if path.suffix != ".whl":
            raise DevpiError(f"upload {path.name}: only wheels are supported")
        data = {":action": "file_upload", "protocol_version": "1", **_wheel_metadata(path)}
        with open(path, "rb") as f:
            self._request(
                f"upload {path.name} to {user}/{index}",
                "POST",
                f"/{user}/{index}/",
                data=data,
                files={"content": (path.name, _StoppableFile(f, self.stopping), "application/octet-stream")},
            )


def index_matches(config: dict, *, bases: Iterable[str], volatile: bool) -> bool:
    """True when an existing index is a stage with exactly these bases and volatility."""
    if config.get("type") != "stage":
        raise DevpiError(f"index exists with type {config.get('type')!r}, not 'stage'; remove it or name another index")
    return list(config.get("bases", ())) == list(bases) and config.get("volatile") == volatile


def plan_upload(
    paths: Iterable[Path], remote: dict[str, str], local_sha256: Callable[[Path], str], where: str
) -> UploadResult:
    """Sort files into those to upload (`todo`), those the index holds (`skipped`) and `conflicts`."""
    result = UploadResult()
    for path in paths:
        remote_sha = remote.get(path.name)
        if remote_sha is None:
            result.todo.append(path)
        elif remote_sha == local_sha256(path):
            result.skipped.append(path.name)
        else:
            result.conflicts.append((path.name, f"already on {where} with sha256 {remote_sha}"))
    return result


def upload_missing(
    client: DevpiClient,
    user: str,
    index: str,
    paths: Iterable[str | Path],
    *,
    progress: Callable[[str, int], None] | None = None,
    workers: int = 4,  # measured: 1 -> 14.4s, 4 -> 12.1s, 8 -> 11.6s for 138 wheels (server-bound)
    listing: Callable[[DevpiClient, str, str], dict[str, str]] = DevpiClient.index_files,
) -> UploadResult:
    """Upload the files whose name+sha256 isn't on the index yet.

    `listing` reads what the index holds: every project page, or an IndexRecord's
    `files`, which skips them while the server is unchanged since it last read them.

    A file whose name is on the index with another sha256, or that the server
    refuses with 409, is reported in ``conflicts``; the others still upload.
    ``progress(filename, nbytes)`` is called once per file, from the calling
    thread, with the file's size whether it was uploaded, skipped or in
    conflict, so a byte progress bar over all ``paths`` reaches its total;
    the bytes actually sent are in ``UploadResult.bytes_uploaded``.
    """
    paths = [Path(p) for p in paths]
    # hash local files while the index is being listed; drop unneeded hashes after
    with stoppable_pool(2) as hasher:
        local = {path: hasher.submit(sha256_file, path) for path in paths}
        remote = listing(client, user, index)
        for path in paths:
            if path.name not in remote:
                local[path].cancel()
    result = plan_upload(paths, remote, lambda path: local[path].result(), f"{user}/{index}")
    if progress:
        for path in paths:
            if path not in result.todo:
                progress(path.name, path.stat().st_size)
    return upload_files(client, user, index, result, progress=progress, workers=workers)


def upload_files(
    client: DevpiClient,
    user: str,
    index: str,
    result: UploadResult,
    *,
    progress: Callable[[str, int], None] | None = None,
    workers: int = 4,
) -> UploadResult:
    """Upload `result.todo`, adding each file to `uploaded` or, refused with 409, to `conflicts`.

    A failure that ends the upload (the server or the link gone, Ctrl-C) drops the uploads not started and
    cuts short those under way: none is sent into the same wall, and a stop does not wait for them.
    """
    with stoppable_pool(workers) as pool:
        try:
            futures = {pool.submit(client.upload_file, user, index, path): path for path in result.todo}
            for future in as_completed(futures):
                path = futures[future]
                nbytes = path.stat().st_size
                try:
                    future.result()
                except DevpiError as e:
                    if e.status != 409:
                        raise
                    result.conflicts.append((path.name, str(e)))
                else:
                    result.uploaded.append(path.name)
                    result.bytes_uploaded += nbytes
                if progress:
                    progress(path.name, nbytes)
        except BaseException:
            client.stopping.set()
            raise
    return result
