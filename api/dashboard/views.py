"""The dashboard's routes: its pages, signing in and out, and the language switch."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from api.auth import session_roles, sign_in
from api.context import ApiContext
from api.dashboard import language
from api.dashboard.pages import PAGES, USER, Page
from api.dashboard.periods import PRESETS, resolve
from api.freshness import read_models_progress

blueprint = Blueprint(
    "dashboard",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)
ALL_ROLES = frozenset({"reader", "auditor", "admin"})


def _context() -> ApiContext:
    return current_app.config["COHORTLINE"]


def _roles() -> frozenset[str] | None:
    context = _context()
    if context.open_mode:
        return ALL_ROLES
    return session_roles(context.api_keys)


def _can(roles: frozenset[str], role: str) -> bool:
    return role in roles or "admin" in roles


def _latest_day() -> date:
    watermark = read_models_progress().watermark
    return watermark.astimezone(UTC).date() if watermark else datetime.now(UTC).date()


def _render(page: Page, **extra: Any) -> Response | str:
    roles = _roles()
    if roles is None:
        return redirect(url_for("dashboard.sign_in_form", next=request.full_path.rstrip("?")))
    if not _can(roles, "reader") or not _can(roles, page.role):
        abort(403)
    period = resolve(request.args, _latest_day(), page.default_range) if page.default_range else None
    lang = str(get_locale().language)
    config = {
        "page": page.name,
        "lang": lang,
        "numberLocale": language.NUMBER_LOCALES[lang],
        "period": None
        if period is None
        else {"preset": period.preset, "from": period.start.isoformat(), "to": period.end.isoformat()},
        "canAudit": _can(roles, "auditor"),
        **extra,
    }
    return render_template(
        f"pages/{page.name}.html",
        page=page,
        pages=[p for p in PAGES if _can(roles, p.role)],
        period=period,
        presets=PRESETS,
        config=config,
        lang=lang,
        languages=language.NAMES,
        signed_in=not _context().open_mode,
        can_audit=config["canAudit"],
    )


def _page_view(page: Page) -> Any:
    def view() -> Response | str:
        return _render(page)

    view.__name__ = page.name
    return view


for _page in PAGES:
    blueprint.add_url_rule(_page.path, _page.name, _page_view(_page))


@blueprint.get(USER.path)
def user(user_id: str) -> Response | str:
    return _render(USER, userId=user_id)


@blueprint.get("/sign-in")
def sign_in_form() -> Response | str:
    return _sign_in_page(_local(request.args.get("next")), None)


@blueprint.post("/sign-in")
def sign_in_submit() -> tuple[str, int] | Response:
    _same_origin()
    context = _context()
    target = _local(request.form.get("next"))
    roles = sign_in(context.api_keys, request.form.get("key", "").strip())
    if roles is None:
        error, status = _("This key is not known."), 401
    elif not _can(roles, "reader"):
        session.clear()
        error, status = _("This key lacks the reader role."), 403
    else:
        session.permanent = True
        return redirect(target)
    return _sign_in_page(target, error), status


def _sign_in_page(target: str, error: str | None) -> str:
    return render_template(
        "sign_in.html",
        next=target,
        error=error,
        lang=str(get_locale().language),
        languages=language.NAMES,
    )


@blueprint.post("/sign-out")
def sign_out() -> Response:
    _same_origin()
    session.clear()
    return redirect(url_for("dashboard.sign_in_form"))


@blueprint.get("/language/<code>")
def choose_language(code: str) -> Response:
    if code not in language.LANGUAGES:
        abort(404)
    response = redirect(_local(request.args.get("next")))
    response.set_cookie(language.COOKIE, code, max_age=language.COOKIE_SECONDS, samesite="Lax", httponly=True)
    return response


@blueprint.errorhandler(403)
@blueprint.errorhandler(404)
def refused(error: HTTPException) -> tuple[str, int]:
    """A page this key may not see, or a language that does not exist, as a page."""
    code = error.code or 404
    message = _("This key may not see this page.") if code == 403 else _("There is no such page.")
    return render_template("refused.html", message=message, lang=str(get_locale().language)), code


def _local(target: str | None) -> str:
    """Only a path on this site (never another host) is followed after signing in or switching."""
    if not target:
        return url_for("dashboard.overview")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("dashboard.overview")
    return target


def _same_origin() -> None:
    """A form posted from another site is refused (the cookie is SameSite=Lax besides). Hosts are
    compared, not schemes: behind a proxy that ends TLS the browser's origin is https while this
    app sees http."""
    origin = request.headers.get("Origin")
    if origin and urlsplit(origin).netloc != request.host:
        abort(403)
