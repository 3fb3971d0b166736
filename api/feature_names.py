"""Feature names in queries: `scene:<scene>` or `tool:<tool>` (metrics.md "Scenes and tools"). A
well-formed name that no event has used is refused with the names that are known."""

from __future__ import annotations

from collections.abc import Mapping

from api.errors import ApiError
from api.ranges import read
from domain.catalogue import EVENT_NAME_LENGTH, SCENES
from projections.features import known_features

FEATURE = f"^(scene:({'|'.join(SCENES)})|tool:[^\\x00]{{1,64}})$"
"""A scene of the catalogue or a tool name as ToolUsed accepts it."""
KNOWN_RULE = "a feature used at least once (422 unknown_feature lists the known ones)"
ACTIVITY_FILTER = (
    f"^(scene:({'|'.join(SCENES)})|tool:[^\\x00]{{1,64}}|event:[^\\x00]{{1,{EVENT_NAME_LENGTH}}})$"
)
"""A feature, or a custom event by its name (events.md "Custom events")."""
ACTIVITY_FILTER_RULE = f"{KNOWN_RULE}; an event name nobody tracked counts no users"


def is_feature(name: str) -> bool:
    return name.startswith(("scene:", "tool:"))


def require_known(asked: Mapping[str, str]) -> None:
    """422 `unknown_feature` unless every feature asked (by the parameter naming it) has been used."""
    features = {field: name for field, name in asked.items() if is_feature(name)}
    if not features:
        return
    known = read(known_features)
    unknown = {field: name for field, name in features.items() if name not in known}
    if unknown:
        listed = ", ".join(known) or "none yet"
        raise ApiError(
            422,
            "unknown_feature",
            f"no scene or tool of that name has been used; known: {listed}",
            [
                {"field": field, "message": f"unknown feature {name!r}", "known": known}
                for field, name in unknown.items()
            ],
        )
