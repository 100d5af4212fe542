"""freight's own events for a machine (installed, started, upgraded, limits changed …) in the journal.

`freight logs NAME` shows them in one stream with what the machine's payload
printed. Each is a journal entry with `SYSLOG_IDENTIFIER=freight` and
`FREIGHT_MACHINE=NAME`, sent straight to journald's socket (its native
protocol is a datagram of FIELD=value lines), so nothing is needed but a
running journald; without one the event is only logged.
"""

from __future__ import annotations

import logging
import socket

log = logging.getLogger("freight.host.events")

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "freight"
FIELD = "FREIGHT_MACHINE"


def record(machine: str, message: str) -> None:
    """Say MESSAGE about MACHINE in the journal (one line; best effort)."""
    log.debug("event %s: %s", machine, message)
    text = " ".join(message.splitlines())
    payload = f"MESSAGE={text}\nSYSLOG_IDENTIFIER={IDENTIFIER}\n{FIELD}={machine}\nPRIORITY=5\n".encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(payload, JOURNAL_SOCKET)
    except OSError as exc:
        log.debug("no journal for the event (%s)", exc)
