"""The README's first API session, run as pasted: start the service, wait until it is ready, get a token, send
JSON with its content type (the session used to send form encoding and race the server start)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.entrypoints.cli.test_serve import free_port

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_session() -> str:
    """The README's first API session, exactly as the reader pastes it (the block after its heading line)."""
    text = README.read_text(encoding="utf-8")
    after = text[text.index("A first session against the API") :]
    start = after.index("```sh\n") + len("```sh\n")
    return after[start : after.index("```", start)]


# The README text, as the reader pastes it; the test swaps 8000 for a free port.
SESSION = readme_session()
HIERARCHY_LOAD = {
    "request": {
        "hierarchy": {
            "identifier": "do_c1",
            "name": "Basics",
            "children": [
                {
                    "identifier": "do_a1",
                    "name": "Quiz",
                    "contentType": "SelfAssess",
                    "mimeType": "application/vnd.ekstep.ecml-archive",
                }
            ],
        }
    }
}


def _environment(tmp_path: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # where `learnagg` is installed
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "LEARNAGG_DATABASE_URL": f"sqlite:///{tmp_path}/readme.db",
        "LEARNAGG_LOG__FORMAT": "text",
    }


def _envelopes(text: str) -> list[dict[str, Any]]:
    """The JSON envelopes curl printed (one after the other, without newlines), skipping any other output."""
    decoder = json.JSONDecoder()
    found, index = [], text.find('{"id"')
    while index >= 0:
        value, end = decoder.raw_decode(text, index)
        found.append(value)
        index = text.find('{"id"', end)
    return found


def _check(load: dict[str, Any], read: dict[str, Any]) -> None:
    assert load["responseCode"] == "OK", load
    assert load["result"] == {"courseId": "do_c1", "leafNodesCount": 1}
    assert read["responseCode"] == "OK", read
    assert read["result"]["courseId"] == "do_c1" and read["result"]["name"] == "Basics"


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None, reason="needs bash and curl")
def test_the_session_works_when_pasted(tmp_path: Path) -> None:
    """The snippet in bash: the load answers OK at once (no race), and the course reads back."""
    script = SESSION.replace("8000", str(free_port()))
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        shell = subprocess.Popen(
            ["bash", "-e", "-c", script],
            cwd=tmp_path,
            env=_environment(tmp_path),
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # the backgrounded server shares the group, stopped below
        )
        try:
            assert shell.wait(timeout=120) == 0, err.read_text()[-2000:]
        finally:
            os.killpg(shell.pid, signal.SIGTERM)
    envelopes = _envelopes(out.read_text())
    assert len(envelopes) == 2, out.read_text()[-2000:]
    _check(*envelopes)


def test_the_session_steps_over_http(tmp_path: Path) -> None:
    """The same steps without a shell: serve, wait for /health/ready, a token, the same JSON with its type."""
    env = _environment(tmp_path)
    run = [sys.executable, "-c", "from learnagg.entrypoints.cli import run; run()"]
    assert subprocess.run([*run, "init"], env=env, capture_output=True, timeout=120).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [*run, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(base_url=f"http://localhost:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "server did not become ready"
                time.sleep(0.5)
            minted = subprocess.run([*run, "token", "admin-1", "--role", "admin"], env=env, capture_output=True)
            headers = {"x-authenticated-user-token": minted.stdout.decode().strip()}
            body = SESSION.split("-d '", 1)[1].split("'\n", 1)[0]  # the snippet's own JSON text
            assert json.loads(body) == HIERARCHY_LOAD
            load = client.post(
                "/v1/course/hierarchy/load", content=body, headers={**headers, "content-type": "application/json"}
            )
            read = client.get("/v1/course/hierarchy/read/do_c1", headers=headers)
            _check(load.json(), read.json())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
