"""URL converters of the API's routes."""

from __future__ import annotations

from werkzeug.routing import PathConverter


class TextConverter(PathConverter):
    """Any text, slashes and line breaks included (a user id or a tool name may hold either):
    Werkzeug's `path` converter stops at a line break, so such a key answered a routing 404."""

    regex = "[^/](?s:.)*?"
