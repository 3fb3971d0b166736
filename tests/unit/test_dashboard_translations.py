"""Every dashboard label has its Chinese translation, compiled, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from babel.support import Translations

DASHBOARD = Path(__file__).resolve().parents[2] / "api" / "dashboard"
TRANSLATIONS = DASHBOARD / "translations"
METHOD_MAP = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def used_messages() -> set[str]:
    return {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(DASHBOARD), METHOD_MAP, keywords=KEYWORDS
        )
        if isinstance(message, str)
    }


def chinese() -> dict[str, str]:
    with (TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return {m.id: m.string for m in read_po(po) if m.id}


def test_every_label_the_dashboard_shows_is_translated():
    used = used_messages()
    assert len(used) > 50
    translated = chinese()
    assert sorted(used - {m for m, s in translated.items() if s}) == []


def test_translations_keep_their_placeholders():
    for message, translation in chinese().items():
        assert sorted(PLACEHOLDER.findall(message)) == sorted(PLACEHOLDER.findall(translation)), message


def test_the_compiled_catalogue_is_the_current_one():
    """`make translations` compiles messages.mo; a .po edited without it would show English."""
    compiled = Translations.load(str(TRANSLATIONS), ["zh"])
    stale = {m: s for m, s in chinese().items() if compiled.gettext(m) != s}
    assert stale == {}
