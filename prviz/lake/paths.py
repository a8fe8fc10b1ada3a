"""Validation of every name that becomes part of a path: days, dataset, endpoint, variant names.

Endpoint and variant names come from the capture layout (someone else's bucket), so they are
checked before they are used to build a path: no `..`, no separators, no absolute paths.
"""

import datetime as dt
import re

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=\-]{0,199}$")


class UnsafePathError(ValueError):
    """A name would escape its folder or is not a valid path segment."""


def validate_segment(name: str) -> str:
    if not isinstance(name, str) or not _SEGMENT.match(name) or ".." in name:
        raise UnsafePathError(
            f"{name!r} is not a safe path segment (letters, digits, '_', '-', '.', '=' only; "
            "no '..', no '/')"
        )
    return name


def validate_day(day: str) -> str:
    try:
        parsed = dt.date.fromisoformat(day)
    except (TypeError, ValueError):
        raise UnsafePathError(f"{day!r} is not a day in the form YYYY-MM-DD") from None
    if parsed.isoformat() != day:
        raise UnsafePathError(f"{day!r} is not a day in the form YYYY-MM-DD")
    return day


def day_range(start: str, end: str) -> list[str]:
    """Every day from start to end inclusive, as YYYY-MM-DD strings."""
    first, last = (
        dt.date.fromisoformat(validate_day(start)),
        dt.date.fromisoformat(validate_day(end)),
    )
    if last < first:
        raise ValueError(f"the range ends ({end}) before it starts ({start})")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def shift_day(day: str, days: int) -> str:
    return (dt.date.fromisoformat(validate_day(day)) + dt.timedelta(days=days)).isoformat()
