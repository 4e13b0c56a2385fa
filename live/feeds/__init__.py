"""Market-data feeds behind one interface (`live.feeds.base.Feed`): replay, Sierra `.scid` tail, synthetic.

:func:`open_feed` builds one from the text of ``navale paper --feed``. The feed modules are imported
only when asked for, so importing this package stays light.
"""

from __future__ import annotations

from live.feeds.base import Feed, FeedError

__all__ = ["Feed", "FeedError", "open_feed", "FEED_FORMS"]

FEED_FORMS = "'synthetic', 'replay:PATH' or 'scid:PATH'"


def open_feed(text: str, **kw) -> Feed:
    """The feed named by ``text``: ``"synthetic"``, ``"replay:PATH"`` or ``"scid:PATH"``; ``kw`` go to its
    constructor (``speed=``, ``resume=``, ...). Anything else raises FeedError in one line."""
    kind, sep, arg = str(text).strip().partition(":")
    kind = kind.strip().lower()
    if kind == "synthetic" and not sep:
        from live.feeds.synthetic import SyntheticFeed

        return SyntheticFeed(**kw)
    if kind in ("replay", "scid") and sep:
        if not arg.strip():
            raise FeedError(f"feed {text!r}: no path after '{kind}:' (use {kind}:PATH)")
        if kind == "replay":
            from live.feeds.replay import ReplayFeed

            return ReplayFeed(arg.strip(), **kw)
        from live.feeds.scid import ScidFeed

        return ScidFeed(arg.strip(), **kw)
    raise FeedError(f"unknown feed {text!r}: use {FEED_FORMS}")
