"""URL converters of the API's routes."""

from __future__ import annotations

from werkzeug.routing import PathConverter


class TextConverter(PathConverter):
    """Any text the catalogue accepts as a key, slashes (a leading one too) and line breaks
    included: Werkzeug's `path` converter stops at a line break and its default one at a slash, so
    such a key answered a routing 404. NUL, which no key holds and no PostgreSQL text can be
    compared with, is a routing 404 too. The app keeps double slashes as they are
    (`merge_slashes` off), so `//x` is the key `/x` rather than a redirect to another key."""

    regex = "[^\\x00]+?"
    part_isolating = False  # Werkzeug would infer True from a regex without a slash
