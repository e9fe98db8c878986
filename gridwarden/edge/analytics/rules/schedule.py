"""When a rule applies: daily time windows, optionally on some weekdays only.

A no-parking zone that only applies 07:00-20:00 on weekdays is written
``Schedule("07:00-20:00", weekdays="mon-fri", tz="Europe/Berlin")``. Windows may run overnight
(``"22:00-06:00"``); ``"24:00"`` is accepted as an end meaning midnight.

Why wall time and a named time zone here, when every other rule timer uses media time: a
schedule is a legal fact about the street ("no parking 07:00-20:00 local time"), not about the
video. The time zone defaults to **UTC** rather than the box's local setting, because edge boxes
usually run in UTC and a silent dependency on the host's TZ would make the same configuration
behave differently on two machines; configure the city's zone explicitly.

Weekdays refer to the day on which a window *starts*: an overnight window ``22:00-06:00`` on
``fri`` is active from Friday 22:00 until Saturday 06:00.

Example::

    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> s = Schedule("07:00-20:00", weekdays="mon-fri", tz="Europe/Berlin")
    >>> monday_noon = datetime(2024, 6, 3, 12, 0, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    >>> s.is_active(monday_noon), s.is_active(monday_noon + 5 * 86400)  # ... and Saturday noon
    (True, False)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class TimeWindow:
    """Minutes since local midnight (end may be 1440); ``end < start`` means the window runs past midnight."""

    start_min: int
    end_min: int

    @property
    def overnight(self) -> bool:
        return self.end_min < self.start_min

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        match = _WINDOW_RE.match(text)
        if not match:
            raise ValueError(f"schedule window {text!r} is not of the form HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if not (0 <= h1 <= 23 and 0 <= m1 <= 59):
            raise ValueError(f"schedule window {text!r}: start {h1:02d}:{m1:02d} is not a time of day")
        if not ((0 <= h2 <= 23 and 0 <= m2 <= 59) or (h2 == 24 and m2 == 0)):
            raise ValueError(f"schedule window {text!r}: end {h2:02d}:{m2:02d} is not a time of day")
        start, end = h1 * 60 + m1, h2 * 60 + m2  # "24:00" is 1440: up to midnight
        if start == end:
            raise ValueError(
                f"schedule window {text!r} is empty (start equals end); use 00:00-24:00 for all day"
            )
        return cls(start, end)


def _parse_weekdays(spec: str | Iterable[str | int]) -> frozenset[int]:
    """``"mon-fri,sun"``, ``["sat", "sun"]`` or ``[0, 1]`` (Monday = 0) -> set of weekday numbers."""
    items: list[str | int] = [p for p in spec.split(",")] if isinstance(spec, str) else list(spec)
    days: set[int] = set()
    for item in items:
        if isinstance(item, int):
            if not 0 <= item <= 6:
                raise ValueError(f"weekday number {item} is not in 0..6 (Monday = 0)")
            days.add(item)
            continue
        text = item.strip().lower()
        if "-" in text:
            first, last = (_day_number(p) for p in text.split("-", 1))
            span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
            days.update(span)
        else:
            days.add(_day_number(text))
    if not days:
        raise ValueError("weekdays is empty: leave it out to mean every day")
    return frozenset(days)


def _day_number(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in _DAY_NAMES:
        raise ValueError(f"unknown weekday {text!r}; use mon, tue, wed, thu, fri, sat, sun")
    return _DAY_NAMES.index(key)


class Schedule:
    """Daily windows (``"07:00-20:00"``, several allowed) during which a rule may fire."""

    def __init__(
        self,
        windows: str | Sequence[str],
        *,
        weekdays: str | Iterable[str | int] | None = None,
        tz: str = "UTC",
    ) -> None:
        texts = [w for w in windows.split(",")] if isinstance(windows, str) else list(windows)
        if not texts:
            raise ValueError("a schedule needs at least one window such as '07:00-20:00'")
        self.windows = [TimeWindow.parse(t) for t in texts]
        self.weekdays = _parse_weekdays(weekdays) if weekdays is not None else frozenset(range(7))
        self.tz = tz
        self._zone = _zoneinfo(tz)

    def __repr__(self) -> str:
        def fmt(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        spans = ",".join(f"{fmt(w.start_min)}-{fmt(w.end_min)}" for w in self.windows)
        days = ",".join(_DAY_NAMES[d] for d in sorted(self.weekdays))
        return f"Schedule({spans!r}, weekdays={days!r}, tz={self.tz!r})"

    def is_active(self, wall_time: float, tz: str | None = None) -> bool:
        """Whether ``wall_time`` (epoch seconds) falls in a window, in ``tz`` (default: the
        schedule's own time zone, itself UTC unless configured)."""
        zone = self._zone if tz is None else _zoneinfo(tz)
        local = datetime.fromtimestamp(wall_time, zone)
        minute = local.hour * 60 + local.minute
        today = local.weekday()
        yesterday = (local - timedelta(days=1)).weekday()
        for w in self.windows:
            if not w.overnight:
                if w.start_min <= minute < w.end_min and today in self.weekdays:
                    return True
            elif (minute >= w.start_min and today in self.weekdays) or (
                minute < w.end_min and yesterday in self.weekdays
            ):
                return True
        return False


def _zoneinfo(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Berlin')") from exc
