"""Notification channels: apprise URLs (Telegram, Discord, Slack, e-mail, ntfy, webhooks...), read from
``$NAVALE_ALERT_URLS`` or a git-ignored secrets file, never from the repository.

apprise does the sending (one library for every service); this module only finds the URLs and reports
per channel whether a message went out.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["URLS_ENV", "SECRETS_FILE", "USER_FILE", "Channel", "ChannelConfigError", "configured_urls"]

URLS_ENV = "NAVALE_ALERT_URLS"
SECRETS_FILE = "navale.secrets.toml"  # in the working directory; git-ignored
USER_FILE = Path(".config") / "navale" / "alerts.toml"  # under the home directory


class ChannelConfigError(ValueError):
    """The alert URLs cannot be read (one line: the file and the cause)."""


def configured_urls(env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                    home: str | Path | None = None) -> tuple[list[str], str]:
    """The apprise URLs and where they came from, first found: ``$NAVALE_ALERT_URLS`` (comma or space
    separated), ``./navale.secrets.toml``, ``~/.config/navale/alerts.toml`` (both: ``[alerts] urls = [...]``).
    ``([], "none")`` when nothing is configured."""
    env = os.environ if env is None else env
    text = env.get(URLS_ENV, "").strip()
    if text:
        return [u for u in re.split(r"[,\s]+", text) if u], f"${URLS_ENV}"
    for path in (Path.cwd() if cwd is None else Path(cwd)) / SECRETS_FILE, \
            (Path.home() if home is None else Path(home)) / USER_FILE:
        if path.is_file():
            return _read_urls(path), str(path)
    return [], "none"


def _read_urls(path: Path) -> list[str]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChannelConfigError(f"{path}: cannot read the alert URLs ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChannelConfigError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
    urls = (doc.get("alerts") or {}).get("urls", []) if isinstance(doc.get("alerts"), dict) else None
    if not isinstance(urls, list) or not all(isinstance(u, str) and u.strip() for u in urls):
        raise ChannelConfigError(f"{path}: [alerts] urls must be a list of apprise URL strings")
    return [u.strip() for u in urls]


class Channel:
    """One apprise URL. :meth:`send` returns None when the service took the message, else the error."""

    def __init__(self, url: str) -> None:
        import apprise

        # sent in the caller's thread (the alert system's daemon delivery thread), bounded by the URL's own
        # timeouts (cto=, rto=): apprise's default dispatch, and its service_timeout guard, run the call in a
        # shared thread pool that the interpreter joins at exit, so an endpoint that never answers would hold
        # the process's exit for its read timeout
        asset = apprise.AppriseAsset(async_mode=False, service_timeout=0)
        self._apprise = apprise.Apprise(asset=asset)
        self.valid = bool(self._apprise.add(url))
        plugin = apprise.Apprise.instantiate(url, asset=asset) if self.valid else None
        # the URL with its secrets masked by apprise, without the query's many defaults
        self.name = plugin.url(privacy=True).split("?", 1)[0] if plugin is not None else url.split(":", 1)[0] + "://…"

    def send(self, title: str, body: str, severity: str = "warning") -> str | None:
        """Notify; None when delivered, else one line saying why not."""
        import apprise

        if not self.valid:
            return "not a valid apprise URL"
        kind = {"info": apprise.NotifyType.INFO, "warning": apprise.NotifyType.WARNING,
                "critical": apprise.NotifyType.FAILURE}.get(severity, apprise.NotifyType.WARNING)
        try:
            with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
                ok = self._apprise.notify(body=body, title=title, notify_type=kind)
                logged = " ".join(log.getvalue().split())
        except Exception as exc:  # noqa: BLE001 - a plugin failing is a failed delivery, never a crash
            return " ".join(f"{type(exc).__name__}: {exc}".split())
        return None if ok else (logged[-300:] or "the service did not accept the notification")

    def __repr__(self) -> str:
        return f"Channel({self.name!r})"
