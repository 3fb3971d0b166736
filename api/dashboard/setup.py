"""What the dashboard needs of the app: a signed session cookie and Flask-Babel's languages."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask
from flask_babel import Babel

from api.context import ApiContext
from api.dashboard.language import select_language

TRANSLATIONS = Path(__file__).parent / "translations"
SESSION_DAYS = 7


def init_dashboard(app: Flask, context: ApiContext) -> None:
    app.config.update(
        SECRET_KEY=context.session_secret or secrets.token_hex(32),
        SESSION_COOKIE_NAME="cohortline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=context.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_DAYS * 86_400,
    )
    Babel(
        app,
        locale_selector=select_language,
        default_translation_directories=str(TRANSLATIONS),
    )
