"""Who holds a lease, and taking one over from a process that is known to be dead.

A lease names its holder as ``host:pid-namespace:pid:nonce``. A holder killed with SIGKILL
(or the machine's OOM killer) cannot release its leases, and waiting out their length would
block its items — and a ``bridge sync`` run again at once after ``kill -9`` — for minutes.
When the holder ran on this host, in this PID namespace, and its process is gone, the lease
is provably orphaned: it is released (which takes a ticket, so whoever takes it next knows
its copy of the item may be stale) and taken. A holder on another node is waited out.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache

from bridge.store.base import Store
from bridge.store.records import Lease

__all__ = ["holder_id", "orphaned", "take_lease"]

log = logging.getLogger("bridge.store")


@cache
def _namespace() -> str:
    """This process's PID namespace (containers sharing a host name have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def holder_id() -> str:
    """A new holder name for this process: unique, and telling where it runs."""
    return f"{socket.gethostname()}:{_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def orphaned(holder: str) -> bool:
    """Whether ``holder`` is a process of this host and namespace that no longer exists."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    host, namespace, pid, _ = parts
    if host != socket.gethostname() or namespace != _namespace() or namespace == "-":
        return False
    if int(pid) == os.getpid():
        return False  # another holder in this very process: alive by definition
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def take_lease(store: Store, name: str, holder: str, now: datetime, ttl: timedelta) -> Lease:
    """``store.acquire_lease``, except that a lease held by a dead process of this host is
    taken over at once (reported like an expired one, in ``expired_holder``)."""
    lease = store.acquire_lease(name, holder, now, ttl)
    if lease.acquired or not orphaned(lease.holder):
        return lease
    store.release_lease(name, lease.holder)  # only if that holder still has it
    taken = store.acquire_lease(name, holder, now, ttl)
    if not taken.acquired:
        return taken  # someone else was quicker
    log.info("%s: took over the lease of %s, a process that no longer exists", name, lease.holder)
    return replace(taken, expired_holder=lease.holder)
