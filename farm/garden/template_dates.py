"""Garden's date helpers (`formatDateUtc`, `shiftDateUtc`, `modifyDateUtc`), in UTC.

Dates parse like JavaScript's `new Date(string)` for ISO-8601 forms; a date-time without an offset
is read as UTC (Garden reads it in the machine's time zone, so on a UTC machine the two agree).
`formatDateUtc` knows the common date-fns tokens (y M d H h m s S a E, quoted text).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class DateError(Exception):
    """What JavaScript throws as a RangeError for an invalid date."""

    js_name = "RangeError"


_ISO = re.compile(r"^\s*([+-]\d{6}|\d{4})(?:-(\d\d)(?:-(\d\d))?)?"
                  r"(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)?"
                  r"\s*(Z|[+-]\d\d:?\d\d)?\s*$", re.IGNORECASE)


def parse_date(text: str) -> datetime:
    m = _ISO.match(text)
    if not m:
        raise DateError("Invalid time value")
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        stamp = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                         int(second or 0), int((frac or "0")[:3].ljust(3, "0")) * 1000, tzinfo=UTC)
    except ValueError:
        raise DateError("Invalid time value") from None
    if zone and zone.upper() != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        stamp -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return stamp


def iso(stamp: datetime) -> str:
    """`Date.prototype.toISOString()`."""
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _make(year: int, month0: int, day: int, hour: int, minute: int, second: int, ms: int) -> datetime:
    """JavaScript's MakeDate: every field may overflow into the next one (day 0 is the day before)."""
    year += month0 // 12
    month0 %= 12
    try:
        base = datetime(year, month0 + 1, 1, tzinfo=UTC)
    except ValueError:
        raise DateError("Invalid time value") from None
    return base + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second, milliseconds=ms)


def _parts(d: datetime) -> list[int]:
    return [d.year, d.month - 1, d.day, d.hour, d.minute, d.second, d.microsecond // 1000]


_MODIFY = {"years": 0, "months": 1, "days": 2, "hours": 3, "minutes": 4, "seconds": 5, "milliseconds": 6}


def modify_date(date: str, amount: float, unit: str) -> str:
    """`date.setUTC<Unit>(amount)`."""
    parts = _parts(parse_date(date))
    parts[_MODIFY[unit]] = int(amount)
    return iso(_make(*parts))


def _add_months(d: datetime, months: int) -> datetime:
    """date-fns addMonths: same day of month, clamped to the month's last day."""
    total = d.year * 12 + d.month - 1 + months
    year, month = divmod(total, 12)
    day = min(d.day, calendar.monthrange(year, month + 1)[1])
    return d.replace(year=year, month=month + 1, day=day)


def shift_date(date: str, amount: float, unit: str) -> str:
    """date-fns `add(date, {[unit]: amount})`."""
    d = parse_date(date)
    n = int(amount)
    if unit in ("years", "months"):
        d = _add_months(d, n * 12 if unit == "years" else n)
    elif unit in ("weeks", "days"):
        d += timedelta(days=n * 7 if unit == "weeks" else n)
    else:
        d += timedelta(seconds=amount * {"hours": 3600, "minutes": 60, "seconds": 1}[unit])
    return iso(d)


_TOKEN = re.compile(r"[yYQqMLwIdDecihHKkms]o|(\w)\1*|''|'(?:''|[^'])+(?:'|$)|.", re.DOTALL)
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def _token(tok: str, d: datetime) -> str:
    head, width = tok[0], len(tok)
    def pad(v: int) -> str:
        return str(v).zfill(width)

    hour12 = d.hour % 12 or 12
    simple: dict[str, Callable[[], str]] = {"y": lambda: str(d.year % 100).zfill(2) if width == 2 else pad(d.year),
              "d": lambda: pad(d.day), "H": lambda: pad(d.hour), "h": lambda: pad(hour12),
              "m": lambda: pad(d.minute), "s": lambda: pad(d.second),
              "S": lambda: f"{d.microsecond // 1000:03d}"[:width].ljust(width, "0"),
              "a": lambda: "AM" if d.hour < 12 else "PM"}
    if head in simple:
        return simple[head]()
    if head in "ML":
        name = _MONTHS[d.month - 1]
        return pad(d.month) if width <= 2 else name[:3] if width == 3 else name
    if head == "E":
        return _DAYS[d.weekday()] if width == 4 else _DAYS[d.weekday()][:3]
    if head in "Xx":
        return "Z" if head == "X" else "+00" + (":00" if width >= 3 else "00" if width == 2 else "")
    raise DateError(f"Format string contains an unescaped latin alphabet character `{head}`")


def format_date(date: str, fmt: str) -> str:
    d = parse_date(date)
    out: list[str] = []
    for m in _TOKEN.finditer(fmt):
        tok = m.group()
        if tok == "''":
            out.append("'")
        elif tok.startswith("'"):
            out.append(tok[1:-1 if tok.endswith("'") and len(tok) > 1 else None].replace("''", "'"))
        elif tok[0].isascii() and tok[0].isalpha():
            out.append(_token(tok, d))
        else:
            out.append(tok)
    return "".join(out)

