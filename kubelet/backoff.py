"""Crash-loop back-off: how long a failed container waits before the kubelet restarts it again.

Upstream's flowcontrol.Backoff as the kubelet uses it: the first restart waits 10 s, each further
one twice as long up to 5 min; an entry untouched for twice the cap (10 min, i.e. the container ran
that long) starts again at 10 s. Keys are pod uid + container name (``key``). Times are plain epoch
seconds passed in, so tests (and the pod worker) decide what "now" is.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL = 10.0  # seconds
MAX = 300.0  # upstream MaxContainerBackOff


def key(pod_uid: str, container_name: str) -> str:
    return f"{pod_uid}_{container_name}"


def go_duration(seconds: float) -> str:
    """``10s``, ``1m20s``, ``5m0s``: how Go prints a whole-second time.Duration."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def message(delay: float, *, container: str, pod_ref: str) -> str:
    """The CrashLoopBackOff waiting message; ``pod_ref`` is ``name_namespace(uid)``."""
    return f"back-off {go_duration(delay)} restarting failed container={container} pod={pod_ref}"


@dataclass
class _Entry:
    delay: float
    last: float


class Backoff:
    def __init__(self, *, initial: float = INITIAL, cap: float = MAX) -> None:
        self.initial, self.cap = initial, cap
        self._entries: dict[str, _Entry] = {}

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last > 2 * self.cap

    def next_delay(self, key: str, now: float) -> float:
        """Record a restart at ``now``; the delay it must wait (10, 20, 40 ... 300 s)."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay, entry.last = min(entry.delay * 2, self.cap), now
        return entry.delay

    def current(self, key: str, now: float) -> float:
        """The delay last handed out for ``key`` (0 if none or expired)."""
        entry = self._entries.get(key)
        return 0.0 if entry is None or self._expired(entry, now) else entry.delay

    def remaining(self, key: str, now: float, *, since: float | None = None) -> float:
        """Seconds the back-off for ``key`` still has to run (0: may restart now). Upstream counts it
        from when the container finished (``since``, its finishedAt); by default from the last
        ``next_delay``. So the first crash restarts at once, the next waits 10 s, then 20 s..."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return 0.0
        start = entry.last if since is None else since
        return max(0.0, start + entry.delay - now)

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def gc(self, now: float) -> None:
        """Forget expired entries (containers that ran long enough, pods gone)."""
        for name in [k for k, e in self._entries.items() if self._expired(e, now)]:
            del self._entries[name]
