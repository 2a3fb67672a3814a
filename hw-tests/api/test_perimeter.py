"""The security perimeter as a town hall meets it: a fresh box paired over HTTPS, an agent's
key used by the official openai client with the box CA, expired keys, the admin plane on its
own listener, and the LAN-only guard between real network namespaces.

The namespace test needs root and `ip` (iproute2): it creates two namespaces joined by a veth
pair, gives each end an address in 198.51.100.0/24 (allowed) and one in 203.0.113.0/24 (not
allowed), and removes them afterwards. No traffic leaves those namespaces.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid

import httpx
import openai
import pytest

from conftest import REPO, TINY, civiad_bin, free_port, model_path


def pairing_code(server) -> str:
    for _ in range(100):
        text = server.log.read_text(errors="replace")
        if "pairing code: " in text:
            return text.split("pairing code: ", 1)[1].split()[0]
        time.sleep(0.1)
    pytest.fail(f"no pairing code in the log:\n{server.log_tail()}")


def ca_file(server, tmp_path):
    path = tmp_path / "civia-ca.crt"
    path.write_text(httpx.get(server.url + "/ca.crt", verify=False).text)
    return path


def test_fresh_box_pairing_to_agent_chat_over_https(civiad, tmp_path):
    """The issue's "done when": pair, admin creates an agent and a key in a web session, the
    agent's key works on /v1/chat/completions over HTTPS with the box CA."""
    server = civiad(model=TINY, api={"tls": True}, env={"CIVIA_DEV_API_KEY": ""})
    ca = ca_file(server, tmp_path)
    http = httpx.Client(base_url=server.url, verify=str(ca), timeout=60)
    r = http.post("/admin/pair", json={"code": pairing_code(server), "name": "secretaire.mairie"})
    assert r.status_code == 201, r.text
    password = r.json()["password"]
    r = http.post("/auth/login", json={"username": "secretaire.mairie", "password": password})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    assert "civia_session" in http.cookies  # Secure cookie: sent back over HTTPS only
    # State-changing requests need the CSRF token besides the cookie.
    r = http.post("/admin/users", json={"name": "agent.accueil", "role": "agent"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", r.text
    hdr = {"x-csrf-token": csrf}
    r = http.post("/admin/users", json={"name": "agent.accueil", "role": "agent", "service": "Accueil"}, headers=hdr)
    assert r.status_code == 201, r.text
    r = http.post("/admin/keys", json={"user": "agent.accueil", "name": "poste 3", "model": TINY}, headers=hdr)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    assert http.get("/auth/me").json()["user"]["name"] == "secretaire.mairie"
    assert http.post("/auth/logout", headers=hdr).status_code == 204
    assert http.get("/admin/users").status_code == 401

    client = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0,
                           http_client=httpx.Client(verify=str(ca)))
    # The agent accepts the usage charter before the first use of the model.
    with pytest.raises(openai.PermissionDeniedError, match="charter"):
        client.chat.completions.create(model=TINY, max_tokens=4, messages=[{"role": "user", "content": "Bonjour"}])
    charter = httpx.get(server.url + "/v1/charter", headers={"authorization": f"Bearer {key}"}, verify=str(ca)).json()
    assert charter["accepted_at"] is None and "Usages interdits" in charter["text"]
    r = httpx.post(server.url + "/v1/charter/accept", headers={"authorization": f"Bearer {key}"},
                   json={"version": charter["version"]}, verify=str(ca))
    assert r.status_code == 200, r.text
    out = client.chat.completions.create(model=TINY, max_tokens=4,
                                         messages=[{"role": "user", "content": "Bonjour"}])
    # Random weights may sample the end token at once: the answer is still a complete one.
    assert out.choices[0].message.role == "assistant" and out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 0
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="civia-" + "0" * 64, max_retries=0,
                      http_client=httpx.Client(verify=str(ca))).models.list()


def test_expired_key_is_refused(civiad):
    server = civiad(model=TINY)
    r = httpx.post(server.url + "/admin/users", headers=server.headers(),
                   json={"name": "agent", "role": "agent"})
    assert r.status_code == 201, r.text
    r = httpx.post(server.url + "/admin/keys", headers=server.headers(),
                   json={"user": "agent", "expires_in_days": 1})
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["info"]["id"]
    auth = {"authorization": f"Bearer {key}"}
    assert httpx.get(server.url + "/v1/models", headers=auth).status_code == 200
    # A day later (moved in the real store file, as time would).
    db = sqlite3.connect(server.log.parent / "state" / "civia.db")
    db.execute("UPDATE api_keys SET expires_at = expires_at - 2 * 86400 WHERE id = ?", (key_id,))
    db.commit()
    db.close()
    r = httpx.get(server.url + "/v1/models", headers=auth)
    assert r.status_code == 401 and r.json()["error"]["code"] == "expired_api_key", r.text


def test_admin_plane_on_its_own_listener(civiad, tmp_path):
    admin_port = free_port()
    server = civiad(model=TINY, api={"tls": True}, admin={"listen": f"127.0.0.1:{admin_port}"})
    ca = ca_file(server, tmp_path)
    h = server.headers()
    r = httpx.get(server.url + "/admin/users", headers=h, verify=str(ca))
    assert r.status_code == 404, "the agents' listener no longer serves /admin"
    admin = f"https://127.0.0.1:{admin_port}"
    r = httpx.get(admin + "/admin/users", headers=h, verify=str(ca))
    assert r.status_code == 200 and r.json()["users"][0]["name"] == "trial-admin", r.text
    assert httpx.get(admin + "/v1/models", headers=h, verify=str(ca)).status_code == 404
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{admin_port}/admin/users", headers=h, timeout=5)


def test_agents_filling_the_api_listener_never_lock_the_admin_out(civiad, tmp_path):
    """The admin listener has its own connection places: every place of the API listener
    taken (idle connections from several workstations) leaves the admin port served."""
    import socket
    admin_port = free_port()
    server = civiad(model=TINY, api={"tls": True, "max_connections": 4, "header_timeout_secs": 60},
                    admin={"listen": f"127.0.0.1:{admin_port}"})
    ca = ca_file(server, tmp_path)
    port = int(server.url.rsplit(":", 1)[1])
    held = [socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.0.{10 + i}", 0))
            for i in range(4)]
    try:
        time.sleep(0.3)
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url + "/health", verify=str(ca), timeout=3)
        r = httpx.get(f"https://127.0.0.1:{admin_port}/admin/users", headers=server.headers(),
                      verify=str(ca), timeout=10)
        assert r.status_code == 200, r.text
    finally:
        for s in held:
            s.close()


def test_login_csrf_scoped_keys_and_the_trial_key_stay_in_their_place(civiad, tmp_path):
    """Low-severity review items: another site cannot log a browser in (login CSRF); a key
    limited to a model carries none of its owner's admin rights; the journal names no user;
    the trial key works only on loopback, and only a long one."""
    server = civiad(model=TINY)
    h = server.headers()
    r = httpx.post(server.url + "/admin/users", headers=h, json={"name": "jeanne.admin", "role": "admin"})
    password = r.json()["password"]
    body = json.dumps({"username": "jeanne.admin", "password": password})
    # A cross-site form can send text/plain, never application/json without a preflight.
    r = httpx.post(server.url + "/auth/login", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type", r.text
    host = server.url.split("://", 1)[1]
    r = httpx.post(server.url + "/auth/login", content=body,
                   headers={"content-type": "application/json", "origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed", r.text
    r = httpx.post(server.url + "/auth/login", content=body,
                   headers={"content-type": "application/json", "origin": f"http://{host}"})
    assert r.status_code == 200, r.text
    # An administrator's key scoped to the model: the model yes, the admin plane no.
    r = httpx.post(server.url + "/admin/keys", headers=h, json={"user": "jeanne.admin", "model": TINY})
    scoped = {"authorization": f"Bearer {r.json()['key']}"}
    assert httpx.get(server.url + "/v1/models", headers=scoped).status_code == 200
    for path in ("/admin/users", "/admin/keys", "/admin/status"):
        r = httpx.get(server.url + path, headers=scoped)
        assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied", (path, r.text)
    # The journal keeps no user name (it outlives an erasure).
    httpx.patch(server.url + "/admin/users/jeanne.admin", headers=h, json={"disabled": True})
    httpx.post(server.url + "/auth/login", json={"username": "jeanne.admin", "password": "faux mot de passe"})
    assert "jeanne" not in server.log.read_text(), server.log_tail()
    # The trial key: refused on a listener other machines reach, and when short.
    port = free_port()
    for listen, key, why in ((f"0.0.0.0:{port}", "a-long-enough-trial-key", "loopback"),
                             (f"127.0.0.1:{port}", "court", "16 to 256")):
        config = tmp_path / f"trial-{why[:2]}.toml"
        config.write_text(f'state_dir = "{tmp_path / why[:2]}"\n[api]\nlisten = "{listen}"\n'
                          f'[model]\npath = "{model_path(TINY)}"\n')
        r = subprocess.run([str(civiad_bin()), "--config", str(config)], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "CIVIA_DEV_API_KEY": key})
        assert r.returncode == 2 and why in r.stdout + r.stderr, r.stdout + r.stderr


# --- LAN-only guard between network namespaces ---------------------------------------------

def sh(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


@pytest.fixture
def lan():
    """Two namespaces, "box" and "lan", joined by a veth pair; each end has an address in an
    allowed (198.51.100.0/24) and a refused (203.0.113.0/24) documentation range."""
    if os.geteuid() != 0:
        pytest.fail("the LAN guard test creates network namespaces: run the tests as root")
    tag = uuid.uuid4().hex[:6]
    box, lan_ns = f"civia-box-{tag}", f"civia-lan-{tag}"
    veth_box, veth_lan = f"cvb{tag}", f"cvl{tag}"
    try:
        sh("ip", "netns", "add", box)
        sh("ip", "netns", "add", lan_ns)
        sh("ip", "link", "add", veth_box, "netns", box, "type", "veth", "peer", "name", veth_lan, "netns", lan_ns)
        for ns, dev, host in ((box, veth_box, 1), (lan_ns, veth_lan, 2)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"198.51.100.{host}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"203.0.113.{host}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        yield box, lan_ns
    finally:
        sh("ip", "netns", "del", box, check=False)
        sh("ip", "netns", "del", lan_ns, check=False)


CLIENT = """
import socket, ssl, sys
src, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    raw = socket.create_connection(("198.51.100.1", port), timeout=10, source_address=(src, 0))
    with ctx.wrap_socket(raw) as s:
        s.sendall(b"GET /health HTTP/1.1\\r\\nHost: civia\\r\\nConnection: close\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    print(data.split(b"\\r\\n", 1)[0].decode())
except (OSError, ssl.SSLError) as e:
    print("REFUSED", type(e).__name__)
"""


def test_lan_guard_between_namespaces(lan, tmp_path):
    box, lan_ns = lan
    port = 8443
    state = tmp_path / "state"
    config = tmp_path / "civiad.toml"
    config.write_text(f'state_dir = "{state}"\n[api]\nlisten = "0.0.0.0:{port}"\n'
                      f'allowed_sources = ["198.51.100.0/24"]\n'
                      f'[model]\npath = "{model_path(TINY)}"\n')
    log = tmp_path / "civiad.log"
    env = {k: v for k, v in os.environ.items() if k != "CIVIA_DEV_API_KEY"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", box, str(civiad_bin()), "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        def probe(src):
            return sh("ip", "netns", "exec", lan_ns, sys.executable, "-c", CLIENT, src, str(port)).stdout.strip()

        deadline = time.monotonic() + 60
        while (first := probe("198.51.100.2")) != "HTTP/1.1 200 OK":
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"never served: {first}\n{log.read_text()}"
            time.sleep(0.2)
        # The same machine from an address outside the allowed range: cut before TLS.
        assert probe("203.0.113.2").startswith("REFUSED"), log.read_text()
        assert "refused connection from 203.0.113.2" in log.read_text()
        assert probe("198.51.100.2") == "HTTP/1.1 200 OK"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
