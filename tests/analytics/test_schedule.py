"""Schedules: daily windows, overnight windows, weekdays, time zones, clear errors."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridwarden.edge.analytics.rules import Schedule


def at(day: int, hour: int, minute: int = 0, tz: str = "UTC") -> float:
    """Epoch seconds of June <day> 2024 (June 3 is a Monday) at the local time in tz."""
    return datetime(2024, 6, day, hour, minute, tzinfo=ZoneInfo(tz)).timestamp()


def test_day_window_boundaries() -> None:
    s = Schedule("07:00-20:00")
    assert not s.is_active(at(3, 6, 59))
    assert s.is_active(at(3, 7, 0))
    assert s.is_active(at(3, 19, 59))
    assert not s.is_active(at(3, 20, 0))


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    s = Schedule("22:00-06:00", weekdays="fri")  # June 7 2024 is a Friday
    assert s.is_active(at(7, 23, 0))
    assert s.is_active(at(8, 5, 59))  # Saturday morning, still Friday's night
    assert not s.is_active(at(8, 6, 0))
    assert not s.is_active(at(8, 23, 0))  # Saturday night: not a Friday window
    assert not s.is_active(at(7, 5, 0))  # Friday morning belongs to Thursday's night


def test_weekdays_and_several_windows() -> None:
    s = Schedule(["07:00-09:00", "16:00-18:30"], weekdays="mon-fri")
    assert s.is_active(at(3, 8)) and s.is_active(at(3, 18, 29))
    assert not s.is_active(at(3, 12))
    assert not s.is_active(at(8, 8))  # Saturday
    weekend = Schedule("00:00-24:00", weekdays=["sat", "sun"])
    assert weekend.is_active(at(9, 23, 59)) and not weekend.is_active(at(10, 0, 0))
    assert Schedule("10:00-11:00", weekdays=[0]).is_active(at(3, 10, 30))
    assert Schedule("10:00-11:00", weekdays="sat-mon").is_active(at(3, 10, 30))  # wraps round


def test_time_zone_is_applied() -> None:
    berlin = Schedule("07:00-20:00", tz="Europe/Berlin")
    noon_berlin = at(3, 12, tz="Europe/Berlin")
    assert berlin.is_active(noon_berlin)
    assert not berlin.is_active(at(3, 19, 30))  # 21:30 in Berlin (summer time)
    assert Schedule("07:00-20:00").is_active(at(3, 19, 30))  # default UTC
    assert not Schedule("07:00-20:00").is_active(at(3, 19, 30), tz="Europe/Berlin")


@pytest.mark.parametrize(
    ("windows", "weekdays", "tz", "message"),
    [
        ("7-20", None, "UTC", "HH:MM-HH:MM"),
        ("25:00-26:00", None, "UTC", "not a time of day"),
        ("08:00-08:00", None, "UTC", "empty"),
        ("08:00-09:00", "funday", "UTC", "unknown weekday 'funday'"),
        ("08:00-09:00", [9], "UTC", "not in 0..6"),
        ("08:00-09:00", None, "Mars/Olympus", "unknown time zone"),
        ([], None, "UTC", "at least one window"),
    ],
)
def test_bad_schedules_are_refused_with_reasons(windows, weekdays, tz, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule(windows, weekdays=weekdays, tz=tz)
