"""The SCP's listening sockets, bound once by the first process and inherited by its workers.

No SO_REUSEPORT: Linux lets any process of the same user join a port whose listeners set it, so a
second SCP started by mistake would silently take part of the traffic. One socket bound before
the workers fork is shared by them alone; anyone else gets EADDRINUSE, and a sentence naming
the program that holds the port.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

from scp import ScpError
from scp.settings import Settings, env_name, flag_name

PROC_NET = ("/proc/net/tcp", "/proc/net/tcp6")
TCP_LISTEN = "0A"  # the state column of /proc/net/tcp
BACKLOG = 128


class StartupError(ScpError):
    """The SCP cannot start; the message is one sentence naming the input and what to do."""


def listen(bind: str, port: int, setting: str) -> socket.socket:
    """A TCP socket listening on (bind, port), or StartupError naming the settings field
    `setting` (`port`, `health_port`) and the program holding the port."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only lets a restart bind past connections in TIME_WAIT; on Linux it never
        # admits a second listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bind, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_failure(bind, port, setting, exc)) from None
    # Worker processes all poll this one socket: the one that loses the race to accept a
    # connection gets EAGAIN (socketserver ignores it) instead of blocking in accept().
    sock.setblocking(False)
    return sock


def _bind_failure(bind: str, port: int, setting: str, exc: OSError) -> str:
    where = f"{env_name(setting)} {port} on {bind}"
    if exc.errno == errno.EADDRINUSE:
        holder = port_holder(port)
        by = f" by {holder}" if holder else " by another program"
        return (
            f"{where} is already in use{by}; stop it, or give this SCP another port "
            f"({flag_name(setting)} / {env_name(setting)})"
        )
    if exc.errno == errno.EACCES:
        return f"{where}: permission denied; ports below 1024 need privileges, use 1024 or above"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {bind} is not an address of this host; fix --bind / BIND_ADDRESS"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def port_holder(port: int) -> str:
    """`storescp (pid 1234)` for the process listening on TCP `port`, or '' when it cannot be
    seen (another user's process, or no /proc)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return ""
    holder = next((p for p in filter(str.isdigit, _listdir("/proc")) if _holds(p, inodes)), "")
    if not holder:
        return ""
    # A forked worker holds its supervisor's socket: name the process the operator started.
    while (parent := _parent(holder)) and _cmdline(parent) == _cmdline(holder):
        holder = parent
    return f"{_program(holder)} (pid {holder})"


def _holds(pid: str, inodes: set[str]) -> bool:
    for fd in _listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _parent(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fp:
            return fp.read().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return ""


def _listening_inodes(port: int) -> set[str]:
    found = set()
    for path in PROC_NET:
        try:
            with open(path) as fp:
                lines = fp.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == TCP_LISTEN and int(cols[1].split(":")[1], 16) == port:
                found.add(cols[9])
    return found


def _cmdline(pid: str) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fp:
            return [a.decode(errors="replace") for a in fp.read().split(b"\0") if a]
    except OSError:
        return []


def _program(pid: str) -> str:
    """The command as an operator would recognise it: `storescp`, `python -m scp`."""
    argv = _cmdline(pid)
    if not argv:
        return "a process"
    name = os.path.basename(argv[0])
    if name.startswith("python") and len(argv) > 2 and argv[1] == "-m":
        return f"{name} -m {argv[2]}"
    return name


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The direct-TLS context (TLS 1.2 or later; client certificates when TLS_CA_FILE is set), or
    None without TLS_CERT_FILE."""
    if not settings.tls_enabled:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_ca:
        ctx.load_verify_locations(settings.tls_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def check_tls(settings: Settings) -> None:
    """StartupError, in one sentence, when the TLS files do not load."""
    try:
        tls_context(settings)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(
            f"TLS_CERT_FILE/TLS_KEY_FILE/TLS_CA_FILE cannot be loaded ({exc}); give a PEM "
            "certificate, its unencrypted PEM private key and, for client certificates, a PEM "
            "CA bundle"
        ) from None
