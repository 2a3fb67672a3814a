"""Pieces of the technician's acceptance suite (hw-tests/acceptance/civia_acceptance.py) that
run without a box: the mDNS answer parser (what comes off the LAN is untrusted: malformed,
truncated or hostile packets must give nothing, never an exception) and the French report.
The suite as a whole runs against the emulated box in hw-tests/emulated."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acceptance"))
from civia_acceptance import Report, _mdns_a_records  # noqa: E402

QNAME = b"\x05civia\x05local\x00"


def answer(records: list[tuple[bytes, int, bytes]], flags: int = 0x8400, questions: int = 0) -> bytes:
    """An mDNS response: header, `questions` copies of the question, then the records."""
    head = struct.pack(">HHHHHH", 0, flags, questions, len(records), 0, 0)
    body = (QNAME + struct.pack(">HH", 1, 1)) * questions
    for owner, rtype, rdata in records:
        body += owner + struct.pack(">HHIH", rtype, 0x8001, 120, len(rdata)) + rdata
    return head + body


def test_a_records_of_the_asked_name():
    pkt = answer([(QNAME, 1, bytes([192, 168, 77, 96])),
                  (b"\x05other\x05local\x00", 1, bytes([10, 0, 0, 1])),  # another name
                  (QNAME, 28, bytes(16)),  # AAAA: not an IPv4 address
                  (QNAME, 1, bytes([192, 168, 77, 97]))], questions=1)
    assert _mdns_a_records(pkt, QNAME) == {"192.168.77.96", "192.168.77.97"}
    # The name compares case-insensitively; a query (not a response) gives nothing.
    assert _mdns_a_records(answer([(b"\x05CIVIA\x05LOCAL\x00", 1, bytes([1, 2, 3, 4]))]), QNAME) == {"1.2.3.4"}
    assert _mdns_a_records(answer([(QNAME, 1, bytes([1, 2, 3, 4]))], flags=0), QNAME) == set()


def test_truncated_and_lying_packets_give_nothing():
    good = answer([(QNAME, 1, bytes([192, 168, 77, 96]))])
    for n in range(len(good)):
        assert _mdns_a_records(good[:n], QNAME) == set(), n
    # A record claiming more data than the packet holds.
    lying = good[:-4] + struct.pack(">I", 0)[:2]
    assert _mdns_a_records(lying, QNAME) == set()
    # Counts far larger than the packet; a compression pointer loop.
    assert _mdns_a_records(struct.pack(">HHHHHH", 0, 0x8400, 65535, 65535, 65535, 65535), QNAME) == set()
    assert _mdns_a_records(struct.pack(">HHHHHH", 0, 0x8400, 0, 1, 0, 0) + b"\xc0\x0c" * 8, QNAME) == set()


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_never_raise(data):
    out = _mdns_a_records(data, QNAME)
    assert isinstance(out, set)


def test_report_in_french_with_every_check():
    r = Report()
    r.add("puce TPM 2.0 présente", True, "{'present': True}")
    r.add("débit | borne", False, "3 jetons/s")
    md = r.markdown("Recette de la box Civia")
    assert not r.ok
    assert "Résultat : **NON CONFORME** (1/2 contrôles réussis)" in md
    assert "| puce TPM 2.0 présente | réussi |" in md
    # A pipe in a name or a detail would break the Markdown table: replaced.
    assert "| débit / borne | **échec** | 3 jetons/s |" in md
