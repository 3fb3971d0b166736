"""The dashboard's two languages: the one chosen (a cookie, remembered for a year), else the
browser's best match, else English."""

from __future__ import annotations

from flask import request

LANGUAGES = ("en", "zh")
NAMES = {"en": "English", "zh": "中文"}
COOKIE = "cohortline_lang"
COOKIE_SECONDS = 365 * 86_400
NUMBER_LOCALES = {"en": "en", "zh": "zh-CN"}
"""The BCP 47 tag a page formats numbers with when the browser's own does not share the language."""


def select_language() -> str:
    chosen = request.cookies.get(COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES, default="en") or "en"
