"""Garden 0.14.20 unit tests that have no counterpart in the farm, each with the reason.

(file, title, reason); counted as "not applicable" in the conformance report.
"""

from __future__ import annotations

NOT_APPLICABLE: list[tuple[str, str, str]] = []
