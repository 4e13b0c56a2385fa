"""Connection settings of a venue (host, port, client id, account, credentials): from the environment, else
the git-ignored ``./navale.secrets.toml`` (sections ``[ib]`` and ``[dtc]``), never from the repository.

Paper is the default. Live trading reads a *separate* file (``--live-config FILE``, sections ``[ib]`` /
``[dtc]`` with ``live = true``) and needs the ``--live`` flag and a typed confirmation (`research.cli`); the
paper ports (TWS 7497, Gateway 4002) are refused for live and the live ports (7496, 4001) for paper, so a
paper configuration can never reach a live account by mistake.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

__all__ = ["VenueSettings", "SettingsError", "load_settings", "IB_PAPER_PORTS", "IB_LIVE_PORTS", "SECRETS_FILE"]

SECRETS_FILE = "navale.secrets.toml"
IB_PAPER_PORTS = (7497, 4002)  # TWS, IB Gateway: paper accounts
IB_LIVE_PORTS = (7496, 4001)
DTC_DEFAULT_PORT = 11099  # Sierra Chart's DTC server, JSON encoding (Global Settings >> Data/Trade Service Settings)
Venue = Literal["ib", "dtc"]
_ENV = {"host": "HOST", "port": "PORT", "client_id": "CLIENT_ID", "account": "ACCOUNT", "username": "USERNAME",
        "password": "PASSWORD", "exchange": "EXCHANGE", "trade_account": "TRADE_ACCOUNT"}


class SettingsError(ValueError):
    """A venue setting is missing or wrong (the message names the source and the key)."""


@dataclass(frozen=True)
class VenueSettings:
    """Where and how to connect. ``live`` is True only for a live configuration file with the opt-in."""

    venue: Venue
    host: str = "127.0.0.1"
    port: int = 4002
    client_id: int = 17
    account: str = ""  # IB account (DU... for paper); DTC trade account
    username: str = ""  # DTC logon
    password: str = ""
    exchange: str = "CME"
    symbol: str = "ES"  # ES or MES
    timeout_s: float = 10.0
    live: bool = False
    source: str = "defaults"  # where the values came from (shown by `navale doctor`, never the secret values)

    def redacted(self) -> dict[str, Any]:
        """The settings to print or journal: the password and account hidden."""
        acct = (self.account[:2] + "…" + self.account[-2:]) if len(self.account) > 4 else ("…" if self.account else "")
        return {"venue": self.venue, "host": self.host, "port": self.port, "client_id": self.client_id,
                "account": acct, "username": self.username, "password": "…" if self.password else "",
                "symbol": self.symbol, "live": self.live, "source": self.source}


def _defaults(venue: Venue) -> VenueSettings:
    return VenueSettings(venue=venue, port=4002 if venue == "ib" else DTC_DEFAULT_PORT)


def _read_toml(path: Path, venue: Venue) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc})") from None
    sec = doc.get(venue, {})
    if not isinstance(sec, dict):
        raise SettingsError(f"{path}: [{venue}] must be a table")
    return sec


def _coerce(key: str, value: Any, where: str) -> Any:
    try:
        if key in ("port", "client_id"):
            return int(value)
        if key == "timeout_s":
            return float(value)
        if key == "live":
            if isinstance(value, bool):
                return value
            raise ValueError("not true/false")
        return str(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{where}: {key} = {value!r} is not valid") from None


def load_settings(venue: Venue, *, live: bool = False, live_config: str | Path | None = None,
                  env: dict[str, str] | None = None, secrets: str | Path | None = None,
                  **override: Any) -> VenueSettings:
    """The settings of ``venue``: defaults, then ``./navale.secrets.toml`` (or ``secrets``), then the environment
    (``NAVALE_IB_HOST``, ``NAVALE_IB_PORT``, ``NAVALE_IB_CLIENT_ID``, ``NAVALE_IB_ACCOUNT``, ``NAVALE_DTC_HOST``,
    ``NAVALE_DTC_PORT``, ``NAVALE_DTC_USERNAME``, ``NAVALE_DTC_PASSWORD``, ``NAVALE_DTC_TRADE_ACCOUNT``...), then
    ``override`` (command-line values that are not None).

    ``live=True`` reads ``live_config`` instead of the secrets file; it must say ``live = true`` in its section
    and, for IB, name a live port and an account. A paper configuration on a live IB port is refused."""
    env = os.environ if env is None else env
    s, sources = _defaults(venue), []
    values: dict[str, Any] = {}
    if live and live_config is None:
        raise SettingsError("live trading needs --live-config FILE (a separate, git-ignored file with "
                            f"[{venue}] live = true): the paper settings are never used for live")
    path = Path(live_config) if live else Path(secrets or SECRETS_FILE)
    if path.is_file():
        for k, v in _read_toml(path, venue).items():
            if k not in VenueSettings.__dataclass_fields__ or k in ("venue", "source"):
                raise SettingsError(f"{path}: [{venue}] has an unknown key {k!r}")
            values[k] = _coerce(k, v, f"{path} [{venue}]")
        sources.append(str(path))
    elif live:
        raise SettingsError(f"--live-config {path}: no such file")
    prefix = f"NAVALE_{venue.upper()}_"
    for k, suffix in _ENV.items():
        if prefix + suffix in env and env[prefix + suffix] != "":
            values[k] = _coerce(k, env[prefix + suffix], f"${prefix + suffix}")
            sources.append("$" + prefix + suffix)
    for k, v in override.items():
        if v is not None:
            values[k] = _coerce(k, v, f"--{k.replace('_', '-')}")
            sources.append(f"--{k.replace('_', '-')}")
    s = replace(s, **values, source=", ".join(dict.fromkeys(sources)) or "defaults")
    if live:
        if not s.live:
            raise SettingsError(f"{path}: [{venue}] must say live = true to trade a live account")
        if venue == "ib":
            if s.port in IB_PAPER_PORTS:
                raise SettingsError(f"{path}: port {s.port} is a paper port (TWS 7497, Gateway 4002): a live session "
                                    "uses 7496 (TWS) or 4001 (Gateway)")
            if not s.account:
                raise SettingsError(f"{path}: [ib] account is required for live trading")
    else:
        if s.live:
            raise SettingsError(f"{s.source}: live = true outside --live (paper is the default; live needs "
                                "navale live --live-config FILE)")
        if venue == "ib" and s.port in IB_LIVE_PORTS:
            raise SettingsError(f"{s.source}: port {s.port} is a live IB port (TWS 7496, Gateway 4001): paper "
                                "sessions use 7497 or 4002; live trading needs `navale live`")
    if not 0 < s.port < 65536:
        raise SettingsError(f"{s.source}: port {s.port} out of range")
    return s
