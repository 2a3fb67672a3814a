"""The emulated-box harness's serial console reader (hw-tests/emulated_box/vm.py) and every
wait on the console (Vm.wait_console, Vm.console_text, Run.wait_api's passphrase check),
without QEMU: a scripted socket hands the reader chunks that split a multi-byte UTF-8
character across two reads, as the serial socket does when a read ends in the middle of
« é ». The pattern must still match, and console.log must keep the raw bytes."""

from __future__ import annotations

import importlib.util
import queue
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

BOX = Path(__file__).resolve().parents[1] / "emulated_box"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# run.py puts emulated_box/ on sys.path and imports `vm` itself: take that same module, so the
# Vm that Run uses is the one tested here.
emulated_run = load("emulated_run", BOX / "run.py")
vm_mod = sys.modules["vm"]

RECOVERY = "Clé de récupération : " + "-".join(["abcdefgh"] * 8)
# The first-boot scenario's pattern (run.py, s_first_boot).
RECOVERY_RX = r"Clé de récupération : ([a-z]{8}(?:-[a-z]{8}){7})"


class ScriptedSocket:
    """What the reader needs of a socket: recv() hands out the queued chunks one per call,
    blocking until the next is queued; b"" is the end of the stream."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes] = queue.Queue()

    def recv(self, _n: int) -> bytes:
        return self.chunks.get(timeout=10)

    def send(self, *chunks: bytes) -> None:
        for c in chunks:
            self.chunks.put(c)


def new_vm(tmp_path: Path):
    """A Vm with no machine behind it: only what the console reader and waits use."""
    vm = object.__new__(vm_mod.Vm)
    vm.dir = tmp_path
    vm.log = lambda _msg: None
    vm.qemu = None
    vm.console = ""
    vm._lock = threading.Lock()
    return vm


def reading(vm, sock) -> threading.Thread:
    t = threading.Thread(target=vm._read_serial, args=(sock,), daemon=True)
    t.start()
    return t


def split_inside(text: str, char: str) -> tuple[bytes, bytes]:
    """`text` encoded, cut after the first byte of the first `char` (a multi-byte one)."""
    raw = text.encode()
    cut = raw.index(char.encode()) + 1
    assert len(char.encode()) > 1
    return raw[:cut], raw[cut:]


def fed(tmp_path: Path, *chunks: bytes):
    """A Vm whose reader has read `chunks` (one recv each) to the end of the stream."""
    vm = new_vm(tmp_path)
    sock = ScriptedSocket()
    t = reading(vm, sock)
    sock.send(*chunks, b"")
    t.join(10)
    assert not t.is_alive()
    return vm


def test_reader_joins_a_character_split_across_two_socket_reads(tmp_path):
    # A real stream socket: the second half is sent only once the first was read.
    vm = new_vm(tmp_path)
    ours, theirs = socket.socketpair()
    t = reading(vm, ours)
    first, second = split_inside("[  OK  ] " + RECOVERY + "\r\n", "é")
    theirs.sendall(first)
    log = tmp_path / "console.log"
    deadline = time.monotonic() + 10
    while not (log.exists() and log.stat().st_size == len(first)):
        assert time.monotonic() < deadline, "the reader did not read the first half"
        time.sleep(0.01)
    assert "\ufffd" not in vm.console and vm.console.endswith("Cl")
    theirs.sendall(second)
    theirs.close()
    t.join(10)
    ours.close()
    assert vm.console == "[  OK  ] " + RECOVERY + "\r\n"
    assert log.read_bytes() == first + second  # the raw log is kept byte for byte


@pytest.mark.parametrize("char,cut", [("é", 1), ("’", 1), ("’", 2), ("ü", 1)])
def test_wait_console_matches_the_recovery_key_at_every_split_of_a_character(tmp_path, char, cut):
    # Every byte boundary inside « é », « ü » (2 bytes) and « ’ » (3 bytes), one read ending there.
    text = "Voici la clé d’accès, à noter (Schlüssel).\n" + RECOVERY + "\n"
    raw = text.encode()
    at = raw.index(char.encode()) + cut
    vm = fed(tmp_path, raw[:at], raw[at:])
    m = vm.wait_console(RECOVERY_RX, timeout=5, fail=r"Please enter|ERREUR")
    assert m.group(0) == RECOVERY
    assert "\ufffd" not in vm.console_text()
    assert (tmp_path / "console.log").read_bytes() == raw


def test_wait_console_recovery_key_split_inside_its_own_pattern(tmp_path):
    # The split falls inside the pattern itself: « Clé » and « récupération », each its own read.
    raw = RECOVERY.encode()
    first = raw.index("é".encode()) + 1
    second = raw.index("é".encode(), first) + 1
    vm = fed(tmp_path, raw[:first], raw[first:second], raw[second:])
    assert vm.wait_console(RECOVERY_RX, timeout=5).group(0) == RECOVERY


def test_wait_console_sees_the_second_half_arrive_while_waiting(tmp_path):
    vm = new_vm(tmp_path)
    sock = ScriptedSocket()
    reading(vm, sock)
    first, second = split_inside(RECOVERY + "\n", "é")
    sock.send(first)
    threading.Timer(0.7, sock.send, args=(second,)).start()
    m = vm.wait_console(RECOVERY_RX, timeout=10)
    assert m.group(1) == RECOVERY.split(" : ")[1]
    sock.send(b"")


def test_wait_console_fail_pattern_split_across_reads(tmp_path):
    first, second = split_inside("systemd-cryptsetup: échec du déverrouillage\n", "é")
    vm = fed(tmp_path, first, second)
    with pytest.raises(AssertionError, match="échec") as e:
        vm.wait_console(RECOVERY_RX, timeout=5, fail=r"échec du déverrouillage")
    assert not isinstance(e.value, vm_mod.BootTimeout)


def test_wait_console_since_counts_characters_of_the_joined_text(tmp_path):
    # A scenario takes `since = len(vm.console)` before a reboot: an offset in characters.
    vm = new_vm(tmp_path)
    sock = ScriptedSocket()
    t = reading(vm, sock)
    old_first, old_second = split_inside("redémarrage sur la version précédente\n", "é")
    sock.send(old_first, old_second)
    deadline = time.monotonic() + 10
    while not vm.console.endswith("\n"):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    since = len(vm.console)
    with pytest.raises(vm_mod.BootTimeout):
        vm.wait_console("redémarrage", timeout=0.6, since=since)
    new_first, new_second = split_inside("Démarrage terminé, pairing code: AB12-CD34\n", "é")
    sock.send(new_first, new_second, b"")
    t.join(10)
    assert vm.wait_console(r"Démarrage terminé, pairing code: ([A-Za-z0-9-]+)", 5, since=since).group(1) == "AB12-CD34"


def test_console_text_is_the_joined_text_without_escapes(tmp_path):
    first, second = split_inside("\x1b[0;32m  OK  \x1b[0m] Clé scellée dans le TPM\r\n", "é")
    vm = fed(tmp_path, first, second)
    assert vm.console_text() == "  OK  ] Clé scellée dans le TPM\n"


def test_a_character_the_stream_never_finishes_is_one_replacement(tmp_path):
    raw = "fin: Cl".encode() + "é".encode()[:1]
    vm = fed(tmp_path, raw)
    assert vm.console == "fin: Cl\ufffd"
    assert (tmp_path / "console.log").read_bytes() == raw


def test_wait_api_reports_the_passphrase_prompt_split_across_reads(tmp_path):
    # systemd's prompt starts with a 4-byte character (the lock): cut it after each byte.
    prompt = "🔐 Please enter passphrase for disk civia-var (var):"
    raw = prompt.encode()
    for cut in range(1, 4):
        vm = fed(tmp_path, b"[  OK  ] Started.\r\n" + raw[:cut], raw[cut:])
        run = object.__new__(emulated_run.Run)
        run.vm = vm
        run.lan = None  # never reached: the prompt is seen first
        with pytest.raises(AssertionError, match="passphrase") as e:
            run.wait_api()
        assert str(e.value).endswith(prompt)
        (tmp_path / "console.log").unlink()
