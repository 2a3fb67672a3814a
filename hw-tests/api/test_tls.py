"""TLS from the box's own CA: the ANSSI profile as a client sees it (real handshakes)."""

import socket
import ssl
import subprocess
import time

import httpx
import openai
import pytest

from conftest import TINY, free_port

# Client-side offers that must fail, and one per allowed family that must succeed.
WEAK_TLS12_SUITES = [
    "AES128-GCM-SHA256",             # RSA key exchange: no forward secrecy
    "ECDHE-ECDSA-AES128-SHA",        # CBC, not AEAD
    "ECDHE-ECDSA-AES256-SHA384",     # CBC, not AEAD
]
GOOD_TLS12_SUITES = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                     "ECDHE-ECDSA-CHACHA20-POLY1305"]


@pytest.fixture(scope="module")
def box(civiad, tmp_path_factory):
    server = civiad(model=TINY, api={"tls": True, "tls_names": ["civia.local"]})
    ca = httpx.get(server.url + "/ca.crt", verify=False).text
    ca_file = tmp_path_factory.mktemp("ca") / "civia-ca.crt"
    ca_file.write_text(ca)
    return server, ca_file


def port(server) -> int:
    return int(server.url.rsplit(":", 1)[1])


def handshake(server, ctx: ssl.SSLContext, name: str = "civia.local") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port(server)), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=name)


def client(ca_file, **versions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    for k, v in versions.items():
        setattr(ctx, k, v)
    return ctx


def test_ca_is_served_and_the_chain_verifies_for_each_name(box):
    server, ca_file = box
    assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    for name in ("civia.local", "localhost", "127.0.0.1"):
        with handshake(server, client(ca_file), name) as s:
            assert s.version() in ("TLSv1.3", "TLSv1.2")
            cert = s.getpeercert()
            assert dict(x[0] for x in cert["issuer"])["organizationName"] == "Civia"
    # A name not in the certificate fails verification.
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(server, client(ca_file), "mairie.example")


@pytest.fixture(scope="module")
def permissive(tmp_path_factory):
    """Control servers (openssl s_server, RSA and ECDSA certificates, every suite allowed):
    the weak offers below really are made, so their refusal by civiad means something."""
    d = tmp_path_factory.mktemp("control")
    for kind, opts in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=control",
                        *opts, "-keyout", str(d / f"{kind}.key"), "-out", str(d / f"{kind}.crt")],
                       check=True, capture_output=True)
    servers, procs = {}, []
    for version in ("-tls1_1", "-tls1_2"):
        p = free_port()
        procs.append(subprocess.Popen(
            ["openssl", "s_server", "-accept", str(p), "-naccept", "100", version,
             "-cert", str(d / "ec.crt"), "-key", str(d / "ec.key"),
             "-dcert", str(d / "rsa.crt"), "-dkey", str(d / "rsa.key"),
             "-cipher", "ALL:@SECLEVEL=0", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        servers[version] = p
    for p in servers.values():
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", p), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
    yield servers
    for proc in procs:
        proc.kill()
        proc.wait()


def control_handshake(p: int, ctx: ssl.SSLContext) -> str:
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", p), timeout=10)) as s:
        return s.version()


def tls11_client(ca_file) -> ssl.SSLContext:
    ctx = client(ca_file)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL really offer TLS 1.1
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def weak_client(ca_file, suite) -> ssl.SSLContext:
    ctx = client(ca_file, minimum_version=ssl.TLSVersion.TLSv1_2, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(suite + ":@SECLEVEL=0")
    return ctx


def test_tls11_and_older_are_refused(box, permissive):
    server, ca_file = box
    assert control_handshake(permissive["-tls1_1"], tls11_client(ca_file)) == "TLSv1.1"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(server, tls11_client(ca_file))


@pytest.mark.parametrize("suite", WEAK_TLS12_SUITES)
def test_non_forward_secret_or_non_aead_suites_are_refused(box, permissive, suite):
    server, ca_file = box
    assert control_handshake(permissive["-tls1_2"], weak_client(ca_file, suite)) == "TLSv1.2"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        handshake(server, weak_client(ca_file, suite))


@pytest.mark.parametrize("suite", GOOD_TLS12_SUITES)
def test_forward_secret_aead_suites_work_over_tls12(box, suite):
    server, ca_file = box
    ctx = client(ca_file, minimum_version=ssl.TLSVersion.TLSv1_2, maximum_version=ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers(suite)
    with handshake(server, ctx) as s:
        assert s.version() == "TLSv1.2" and s.cipher()[0] == suite


def test_tls13_is_preferred(box):
    server, ca_file = box
    with handshake(server, client(ca_file)) as s:
        assert s.version() == "TLSv1.3"
        assert s.cipher()[0] in ("TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
                                 "TLS_CHACHA20_POLY1305_SHA256")


def test_plain_http_on_the_tls_port_gets_nothing(box):
    server, _ = box
    with pytest.raises(httpx.HTTPError):
        httpx.get(server.url.replace("https://", "http://") + "/health", timeout=5)


def test_openai_client_over_https_with_the_box_ca(box):
    server, ca_file = box
    http = httpx.Client(verify=str(ca_file))
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key, max_retries=0, http_client=http)
    r = c.chat.completions.create(model=TINY, max_tokens=4, temperature=0,
                                  messages=[{"role": "user", "content": "Bonjour"}])
    assert r.usage.completion_tokens >= 1
    # The CA file is the one the box serves, and stays the same across restarts of the daemon.
    assert httpx.get(server.url + "/ca.crt", verify=str(ca_file)).text == ca_file.read_text()


def test_communes_own_certificate_replaces_the_box_one(civiad, tmp_path):
    """[api] tls_certificate/tls_key: the commune's PKI (here an RSA CA made with openssl)."""
    def ossl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp_path)

    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-subj", "/CN=PKI de la mairie", "-days", "30",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
         "-subj", "/CN=civia.mairie.local")
    (tmp_path / "san.ext").write_text("subjectAltName=DNS:localhost,DNS:civia.mairie.local,IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "srv.crt", "-days", "30", "-extfile", "san.ext")
    server = civiad(model=TINY, api={"tls": True, "tls_certificate": str(tmp_path / "srv.crt"),
                                     "tls_key": str(tmp_path / "srv.key")})
    r = httpx.get(server.url + "/health", verify=str(tmp_path / "ca.crt"))
    assert r.status_code == 200
    box_ca = tmp_path / "box-ca.crt"
    box_ca.write_text(httpx.get(server.url + "/ca.crt", verify=str(tmp_path / "ca.crt")).text)
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", verify=str(box_ca))
    # An RSA certificate still gets forward-secret AEAD suites only.
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with handshake(server, ctx, "civia.mairie.local") as s:
        name, _, _ = s.cipher()
        assert name.startswith("ECDHE-RSA-") and ("GCM" in name or "CHACHA20" in name), name
