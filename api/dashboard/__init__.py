"""The web dashboard (api.md "Dashboard and operations"): pages laid out as the centres a retention
team works in, served by the API's app. Each page is a template and a script that reads the same
JSON routes as any other client (api.routes), so a page shows exactly what the API answers."""

from api.dashboard.setup import init_dashboard
from api.dashboard.views import blueprint

__all__ = ["blueprint", "init_dashboard"]
