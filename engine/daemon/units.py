"""Sizes and ages printed the way the docker CLI prints them ("4.26MB", "2 hours ago").

Standard library only: both the daemon (progress bars) and the fast-starting ``pinnace engine``
client import it.
"""

from __future__ import annotations

_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BAR_WIDTH = 50

# (upper bound in seconds, formatter) in order; the first bound above the age wins
_AGES: tuple[tuple[float, str], ...] = (
    (1, "Less than a second"),
    (2, "1 second"),
    (60, "{s} seconds"),
    (120, "About a minute"),
    (3600, "{m} minutes"),
    (2 * 3600 - 1800, "About an hour"),
    (48 * 3600, "{h} hours"),
    (14 * 86400, "{d} days"),
    (60 * 86400, "{w} weeks"),
    (730 * 86400, "{mo} months"),
)


def human_size(size: float) -> str:
    """Decimal units with four significant digits, as Docker's ``units.HumanSize``."""
    value, unit = float(size), 0
    while value >= 1000.0 and unit < len(_SIZE_UNITS) - 1:
        value /= 1000.0
        unit += 1
    return f"{value:.4g}{_SIZE_UNITS[unit]}"


def human_duration(seconds: float) -> str:
    """An age in words, as Docker's ``units.HumanDuration`` (the caller adds " ago")."""
    seconds = max(seconds, 0.0)
    hours = int(seconds / 3600 + 0.5)
    values = {
        "s": int(seconds),
        "m": int(seconds / 60),
        "h": hours,
        "d": hours // 24,
        "w": hours // 24 // 7,
        "mo": hours // 24 // 30,
    }
    for bound, text in _AGES:
        if seconds < bound:
            return text.format(**values)
    return f"{hours // 24 // 365} years"


def progress_bar(current: int, total: int) -> str:
    """The ``progress`` text of a Docker JSON message: ``[=====>     ]  1.2MB/2.2MB``."""
    amounts = f"{human_size(current)}/{human_size(total)}" if total > 0 else human_size(current)
    if total <= 0:
        return amounts
    filled = min(BAR_WIDTH, int(BAR_WIDTH * current / total))
    arrow = ">" if filled < BAR_WIDTH else ""
    bar = "=" * filled + arrow + " " * max(0, BAR_WIDTH - filled - len(arrow))
    return f"[{bar}] {amounts:>17}"
