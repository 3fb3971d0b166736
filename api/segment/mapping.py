"""A shop's own event names routed to scenes and tools: the mapping file (TOML) that
`COHORTLINE_SEGMENT_MAPPING` names, and the currency an order without one is in.

    default_currency = "GBP"

    [events."Checked In"]
    type = "ToolUsed"
    tool = "check_in"

    [events."Live Stream Watched"]
    type = "SceneVisited"
    scene = "content"
    action = "view"

A name listed here takes precedence over the built-in table (api.segment.translate), so a shop can
also route, say, `Coupon Applied` to a plain tracked event."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from domain.catalogue import EVENT_NAME_LENGTH, SCENES


class Route(BaseModel):
    """Where one of the shop's event names goes: a tool use, a scene visit, or a tracked event
    (under another name, when `name` is given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ToolUsed", "SceneVisited", "EventTracked"]
    tool: str | None = Field(None, min_length=1, max_length=64)
    scene: Literal[SCENES] | None = None  # type: ignore[valid-type]
    action: str | None = Field(None, min_length=1, max_length=512)
    name: str | None = Field(None, min_length=1, max_length=EVENT_NAME_LENGTH)

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> Route:
        wanted = {"ToolUsed": {"tool"}, "SceneVisited": {"scene"}, "EventTracked": set()}[self.type]
        allowed = wanted | ({"action"} if self.type != "EventTracked" else {"name"})
        given = {name for name in ("tool", "scene", "action", "name") if getattr(self, name) is not None}
        if missing := wanted - given:
            raise ValueError(f"{self.type} needs {', '.join(sorted(missing))}")
        if extra := given - allowed:
            raise ValueError(f"{self.type} takes no {', '.join(sorted(extra))}")
        return self


class SegmentMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default_currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    """The ISO 4217 currency of an order whose properties name none (Segment's own default)."""
    events: dict[str, Route] = Field(default_factory=dict)
    """A tracked event's name → where it goes."""


DEFAULT_MAPPING = SegmentMapping()


class MappingFileError(ValueError):
    """The mapping file cannot be read or does not say what a mapping says."""


def load_mapping(path: Path) -> SegmentMapping:
    """The mapping in a TOML file; MappingFileError naming the file and what is wrong."""
    try:
        return SegmentMapping.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise MappingFileError(f"{path}: {e}") from None
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in e.errors()
        )
        raise MappingFileError(f"{path}: {problems}") from None
