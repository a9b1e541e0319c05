"""A stand-in for the Hugging Face Hub on 127.0.0.1: the routes huggingface_hub uses for
``HfApi.create_repo``, ``HfApi.upload_folder`` (README validation, preupload, commit), ``snapshot_download``
(revision info, tree listing, file resolve) and ``HfApi.list_repo_tree``.

Repositories live in :attr:`HubStandIn.repos`: ``repo_id -> {"sha": commit, "files": {path:
bytes}}``. Files ending in ``.pt``/``.onnx`` are listed as LFS files (with their SHA-256), the
others as regular git blobs (with their git blob id), as the Hub does for binaries.
``tamper[path] = bytes`` serves other bytes for a file than the listing describes.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".pt", ".onnx")


def _blob_id(body: bytes) -> str:
    return hashlib.sha1(f"blob {len(body)}\0".encode() + body).hexdigest()


class HubStandIn(http.server.BaseHTTPRequestHandler):
    repos: ClassVar[dict[str, dict[str, Any]]] = {}
    tamper: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.repos, cls.tamper, cls.requests = {}, {}, []

    # -- plumbing ---------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _not_found(self) -> None:
        self._json({"error": "Repository not found"}, 404,
                   {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})

    def log_message(self, *args: object) -> None:
        pass

    # -- routes -----------------------------------------------------------------------------
    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        self.requests.append(f"POST {path}")
        body = self._body()
        parts = path.strip("/").split("/")
        if path == "/api/repos/create":
            data = json.loads(body)
            repo_id = f"{data.get('organization') or 'user'}/{data['name']}"
            self.repos.setdefault(repo_id, {"sha": "0" * 40, "files": {}})
            self._json({"url": f"http://{self.headers['Host']}/{repo_id}", "name": repo_id})
        elif path == "/api/validate-yaml":  # the model card's front matter
            self._json({"warnings": []})
        elif parts[:2] == ["api", "models"] and parts[4] == "preupload":
            files = json.loads(body)["files"]
            self._json({"files": [{"path": f["path"], "uploadMode": "regular",
                                   "shouldIgnore": False} for f in files]})
        elif parts[:2] == ["api", "models"] and parts[4] == "commit":
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._not_found()
            files = dict(repo["files"])
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] != "header":
                    return self._json({"error": f"unsupported {item['key']}"}, 400)
            sha = hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest()
            repo.update(sha=sha, files=files)
            repo_id = f"{parts[2]}/{parts[3]}"
            self._json({"commitUrl": f"http://{self.headers['Host']}/{repo_id}/commit/{sha}",
                        "commitOid": sha, "pullRequestUrl": None})
        else:
            self._json({"error": f"no route {path}"}, 404)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        self.requests.append(f"{self.command} {path}")
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._not_found()
            self._json({"id": f"{parts[2]}/{parts[3]}", "sha": repo["sha"], "private": False,
                        "siblings": [{"rfilename": p} for p in sorted(repo["files"])]})
        elif parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            repo = self.repos.get(f"{parts[2]}/{parts[3]}")
            if repo is None:
                return self._not_found()
            listing = []
            for name, body in sorted(repo["files"].items()):
                entry = {"type": "file", "path": name, "size": len(body), "oid": _blob_id(body)}
                if name.endswith(LFS_SUFFIXES):
                    entry["lfs"] = {"oid": hashlib.sha256(body).hexdigest(), "size": len(body),
                                    "pointerSize": 134}
                listing.append(entry)
            folders = sorted({n.rsplit("/", 1)[0] for n in repo["files"] if "/" in n})
            listing += [{"type": "directory", "path": f, "size": 0, "oid": "1" * 40}
                        for f in folders]
            self._json(listing)
        elif len(parts) >= 5 and parts[2] == "resolve":
            repo = self.repos.get(f"{parts[0]}/{parts[1]}")
            name = "/".join(parts[4:])
            if repo is None or name not in repo["files"]:
                return self._json({"error": "Entry not found"}, 404,
                                  {"X-Error-Code": "EntryNotFound"})
            listed = repo["files"][name]
            body = self.tamper.get(name, listed)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Repo-Commit", repo["sha"])
            if name.endswith(LFS_SUFFIXES):
                etag = hashlib.sha256(listed).hexdigest()
                self.send_header("X-Linked-Etag", f'"{etag}"')
                self.send_header("X-Linked-Size", str(len(listed)))
            else:
                etag = _blob_id(listed)
            self.send_header("ETag", f'"{etag}"')
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(body)
        else:
            self._json({"error": f"no route {path}"}, 404)
