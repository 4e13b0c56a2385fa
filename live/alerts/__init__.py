"""Alerts: rules on the journal's status and events (:mod:`.rules`, thresholds in :mod:`.config`), and their
delivery with cooldown, history and apprise notifications (:mod:`.delivery`, :mod:`.channels`).
docs/alerts.md has the rules, the configuration and the channels."""

from .config import AlertConfig, AlertConfigError
from .rules import Alert, evaluate

__all__ = ["Alert", "AlertConfig", "AlertConfigError", "AlertSystem", "evaluate"]


def __getattr__(name: str):
    if name == "AlertSystem":  # imports apprise only when delivery is used
        from .delivery import AlertSystem

        return AlertSystem
    raise AttributeError(name)
