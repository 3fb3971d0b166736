"""`make browser`: headless Chromium and a CJK font from Debian's packages, for the dashboard's
browser tests (Playwright drives /usr/bin/chromium; it never downloads a browser)."""

from __future__ import annotations

import sys
from pathlib import Path

from infra.services.errors import ServiceError
from infra.services.process import apt_install

CHROMIUM = Path("/usr/bin/chromium")
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
"""Without a CJK font the Chinese pages render as boxes in screenshots."""
PACKAGES = {CHROMIUM: "chromium", CJK_FONT: "fonts-wqy-microhei"}
LOG = Path("var") / "services" / "browser-install.log"


def main() -> int:
    missing = [package for path, package in PACKAGES.items() if not path.exists()]
    if not missing:
        print(f"browser: {CHROMIUM} and a CJK font are installed")
        return 0
    LOG.parent.mkdir(parents=True, exist_ok=True)
    try:
        apt_install(missing, service="browser", log_file=LOG, log=print)
    except ServiceError as e:
        print(f"browser: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
