"""``FarmClient``: the REST API as typed Python methods, for pipelines and for the CLI when
``FARM_API_URL`` is set."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

FINISHED = {"succeeded", "failed", "canceled"}


class FarmAPIError(Exception):
    """Raised for any non-2xx answer; carries the API's message and field problems."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]]) -> None:
        self.status, self.message, self.problems = status, message, problems
        detail = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        super().__init__(f"HTTP {status}: {message}" + (f" ({detail})" if detail else ""))


class FarmClient:
    def __init__(self, base_url: str, token: str | None = None, *, timeout_s: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FarmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        r = self._http.request(method, path, **kw)
        if r.is_success:
            return r.json() if r.content else None
        try:
            body = r.json()
            message, problems = str(body.get("error", r.text)), list(body.get("problems", []))
        except ValueError:
            message, problems = r.text or r.reason_phrase, []
        raise FarmAPIError(r.status_code, message, problems)

    def health(self) -> dict[str, str]:
        r = self._http.get("/health")
        return dict(r.json())

    def submit(self, spec: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return dict(self._call("POST", "/jobs", json=spec, headers=headers))

    def list_jobs(self, **filters: Any) -> dict[str, Any]:
        params = {k: v for k, v in filters.items() if v is not None}
        return dict(self._call("GET", "/jobs", params=params))

    def job(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/retry"))

    def pause(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/pause"))

    def resume(self, job_id: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/jobs/{job_id}/resume"))

    def set_priority(self, job_id: int, priority: int) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/jobs/{job_id}", json={"priority": priority}))

    def workers(self, *, include_stopped: bool = False) -> list[dict[str, Any]]:
        params = {"include_stopped": "true"} if include_stopped else {}
        return list(self._call("GET", "/workers", params=params))

    def drain(self, name: str, *, draining: bool = True) -> dict[str, Any]:
        verb = "drain" if draining else "undrain"
        return dict(self._call("POST", f"/workers/{quote(name, safe='')}/{verb}"))

    def audit(self, **filters: Any) -> dict[str, Any]:
        """A page of ``GET /audit``: ``since``, ``action``, ``actor``, ``job``, ``target``,
        ``limit``, ``before`` (the previous page's ``next_before``)."""
        params = {k: v for k, v in filters.items() if v is not None}
        return dict(self._call("GET", "/audit", params=params))

    def artifacts(self, job_id: int) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/jobs/{job_id}/artifacts"))

    def task_logs(
        self, task_id: int, *, attempt: int | None = None, after: int = -1, follow: bool = False
    ) -> Iterator[dict[str, Any]]:
        """The attempt's log lines (default: the latest attempt). ``follow`` yields them as
        they are written, through the task's later attempts, until the task ends (a last
        line of level ``end``), asking again each time the server ends its answer."""
        while True:
            last = None
            for line in self._log_lines(task_id, attempt, after, follow):
                last = line
                yield line
            if not follow or (last is not None and last["level"] == "end"):
                return
            if last is not None:
                attempt, after = int(last["attempt"]), int(last["seq"])

    def _log_lines(
        self, task_id: int, attempt: int | None, after: int, follow: bool
    ) -> Iterator[dict[str, Any]]:
        params: dict[str, Any] = {"after": after, "follow": "true" if follow else "false"}
        if attempt is not None:
            params["attempt"] = attempt
        with self._http.stream("GET", f"/tasks/{task_id}/logs", params=params) as r:
            if not r.is_success:
                r.read()
                try:
                    message = str(r.json().get("error", r.text))
                except ValueError:
                    message = r.text
                raise FarmAPIError(r.status_code, message, [])
            for line in r.iter_lines():
                if line.strip():
                    yield dict(json.loads(line))

    def wait(self, job_id: int, *, timeout_s: float = 3600, poll_s: float = 1.0) -> dict[str, Any]:
        """Poll until the job ends; raises TimeoutError past ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job["state"] in FINISHED:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['state']} after {timeout_s}s")
            time.sleep(poll_s)

    def download(self, artifact_id: int, dest: Path) -> Path:
        """Stream an artifact to ``dest`` (written under a temporary name, then renamed)."""
        tmp = dest.with_name(f".{dest.name}.part")
        with self._http.stream("GET", f"/artifacts/{artifact_id}/content") as r:
            if not r.is_success:
                r.read()
                raise FarmAPIError(r.status_code, r.text, [])
            with tmp.open("wb") as f:
                for chunk in r.iter_bytes():
                    f.write(chunk)
        tmp.replace(dest)
        return dest
