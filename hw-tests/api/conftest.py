"""Fixtures that run the real civiad binary against real GGUF models.

Binary: $CIVIAD_BIN, else <repo>/target/release/civiad (build it with cargo first).
Models: $CIVIA_MODEL_DIR, else <repo>/.cache/models (appliance/scripts/install-models.sh).
Missing binary or models fail the tests: they are never skipped.
"""

import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = Path(os.environ.get("CIVIA_MODEL_DIR", REPO / ".cache" / "models"))
SMOL = "SmolLM2-135M-Instruct.Q4_1"
TINY = "tiny-mistral"
# The embedding model every civiad of these tests serves unless a test turns it off
# (start_civiad(embeddings=False)): the README's run command serves it too.
E5 = "multilingual-e5-small.Q4_0"
READY_TIMEOUT_S = 120
# Every civiad these tests start has this trial admin key (CIVIA_DEV_API_KEY) unless a test
# gives its own env; Server.headers() sends it.
DEV_KEY = "test-dev-key-0123456789"


def civiad_bin() -> Path:
    path = Path(os.environ.get("CIVIAD_BIN", REPO / "target" / "release" / "civiad"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"civiad binary not found at {path}: run `cargo build --release -p civiad` "
            "or set CIVIAD_BIN",
            pytrace=False,
        )
    return path


def model_path(model: str) -> Path:
    """`model` is a model id (file stem in MODEL_DIR) or a path to a .gguf file."""
    path = Path(model) if model.endswith(".gguf") else MODEL_DIR / f"{model}.gguf"
    if not path.is_file():
        pytest.fail(
            f"model file {path} is missing: run appliance/scripts/install-models.sh "
            "(or set CIVIA_MODEL_DIR)",
            pytrace=False,
        )
    return path


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v) if not isinstance(v, str) else '"' + v.replace('"', '\\"') + '"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    url: str  # http://127.0.0.1:PORT, no trailing slash
    model_id: str
    log: Path
    config: Path
    api_key: str | None = DEV_KEY

    def headers(self) -> dict:
        return {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_civiad(
    workdir: Path,
    model: str = SMOL,
    api: dict | None = None,
    env: dict | None = None,
    wait_ready: bool = True,
    admin: dict | None = None,
    update: dict | None = None,
    sections: dict | None = None,
    model_options: dict | None = None,
    embeddings: bool | dict = True,
) -> Server:
    """Starts civiad with a fresh state dir and free port; waits for /ready (or /health).
    `model_options`: more keys of the `[model]` section (e.g. `gpu_layers`). `embeddings`:
    the embedding model E5 is served (True, or a dict of more `[embeddings]` keys), or not
    (False)."""
    binary, mpath = civiad_bin(), model_path(model)
    # The model workers run under their own uid ([sandbox] worker_uid): like on a box, the
    # model file must be readable by it, and pytest makes its temporary directories 0700.
    if mpath.parent.stat().st_mode & 0o001 == 0:
        mpath.parent.chmod(0o755)
    port = free_port()
    lines = [f'state_dir = "{workdir / "state"}"', "[api]", f'listen = "127.0.0.1:{port}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in (api or {}).items()]
    sections = dict(sections or {})
    if embeddings is not False and "embeddings" not in sections:
        extra = embeddings if isinstance(embeddings, dict) else {}
        sections["embeddings"] = {"path": str(model_path(E5)), **extra}
    for name, section in (("admin", admin), ("update", update), *sections.items()):
        if section:
            lines += [f"[{name}]"] + [f"{k} = {toml_value(v)}" for k, v in section.items()]
    lines += ["[model]", f'path = "{mpath}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in (model_options or {}).items()]
    config = workdir / "civiad.toml"
    config.write_text("\n".join(lines) + "\n")
    log = workdir / "civiad.log"
    full_env = {k: v for k, v in os.environ.items() if k != "CIVIA_DEV_API_KEY"}
    full_env["CIVIA_DEV_API_KEY"] = DEV_KEY
    full_env.update(env or {})
    api_key = full_env.get("CIVIA_DEV_API_KEY") or None
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=full_env,
        )
    scheme = "https" if (api or {}).get("tls") else "http"
    server = Server(proc, f"{scheme}://127.0.0.1:{port}", mpath.stem, log, config, api_key)
    probe = "/ready" if wait_ready else "/health"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"civiad exited with {proc.returncode}:\n{server.log_tail()}", pytrace=False)
        try:
            # The box's own CA is not known yet: TLS tests check the chain themselves.
            if httpx.get(server.url + probe, timeout=2, verify=False).status_code == 200:
                # /ready is the language model's; the embedding model loads beside it.
                if not wait_ready or embeddings is False or httpx.get(
                        server.url + "/health", timeout=2, verify=False).json()["embeddings"]["loaded"]:
                    return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"civiad not ready after {READY_TIMEOUT_S} s:\n{server.log_tail()}", pytrace=False)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def civiad(tmp_path_factory):
    """Factory: civiad(model=..., api={...}, env={...}) -> Server; all stopped after the module."""
    servers = []

    def start(**kwargs) -> Server:
        server = start_civiad(tmp_path_factory.mktemp("civiad"), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def smol(civiad) -> Server:
    return civiad(model=SMOL)


def openai_client(server) -> "openai.OpenAI":
    """The official client on `server`'s API key: no retries, a long timeout (CPU models)."""
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key, max_retries=0, timeout=300)


# French gives itself away by its accented letters and its most common words; an API error
# message is English (docs/errors.md: the web app words the code in French). Quoted parts
# (what the client sent, echoed back) are not the box's words.
_FRENCH = re.compile(r"[éèêàâùûôîçœ«»]|\b(le|la|les|est|une|des|du|fichier|doit|réessayez|boîtier|veuillez)\b",
                     re.IGNORECASE)
_QUOTED = re.compile(r"`[^`]*`|\"[^\"]*\"|'[^' ]*'")


def english_error(body: dict) -> dict:
    """The `error` object of a refusal, checked: an English message, a code, and `details`
    (where present) of the documented shape. Returns it."""
    err = body["error"]
    assert err["message"] and not _FRENCH.search(_QUOTED.sub("", err["message"])), err
    assert re.fullmatch(r"[a-z][a-z0-9_]*", err["code"]), err
    if "details" in err:
        d = err["details"]
        assert re.fullmatch(r"[a-z][a-z0-9_]*", d["reason"]), err
        assert all(isinstance(v, (str, int)) for v in d.values()), err
    return err


# Every refusal any test receives through httpx (the tests' own calls and the official
# `openai` client's) is checked the same way: a French or malformed error fails the test
# that met it.
_send = httpx.Client.send


def _checked_send(self, request, *args, stream=False, **kwargs):
    resp = _send(self, request, *args, stream=stream, **kwargs)
    if not stream and resp.status_code >= 400 and "json" in resp.headers.get("content-type", ""):
        try:
            body = resp.json()
        except ValueError:
            return resp
        if isinstance(body, dict) and isinstance(body.get("error"), dict) and "code" in body["error"]:
            english_error(body)
    return resp


httpx.Client.send = _checked_send
