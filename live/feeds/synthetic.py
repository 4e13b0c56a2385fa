"""The synthetic live feed: the embedded generator's trades streamed in accelerated time.

It is the default feed of ``navale paper``, so a fresh clone with no market data trades something. The
trades are ``research.data.synthetic.generate_trades(spec)``: deterministic in the spec, and the same
trades the default data set's ``.scid`` holds, so a backtest of that file sees the same market. The
resume token is ``{"next": i, "records": n, "spec": digest}``; a token of another spec is refused.
"""

from __future__ import annotations

from collections.abc import Callable

from live.feeds.base import FeedError
from live.feeds.replay import ArrayFeed, TickColumns
from research.data.synthetic import SyntheticSpec, generate_trades

__all__ = ["SyntheticFeed"]


class SyntheticFeed(ArrayFeed):
    """Streams the synthetic trades of ``spec`` at ``speed`` x real time (None: as fast as possible)."""

    def __init__(self, spec: SyntheticSpec = SyntheticSpec(), *, speed: float | None = 60.0, resume: object = None,
                 max_wait_seconds: float = 2.0, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.spec = spec
        self.digest = digest = spec.digest()  # asked for at every record (resume_token): computed once
        if resume is not None:
            if not isinstance(resume, dict) or resume.get("spec") != digest:
                got = resume.get("spec") if isinstance(resume, dict) else resume
                raise FeedError(f"synthetic feed: the resume token is for generator spec {got!r}, this feed runs {digest!r}")
            resume = {k: resume[k] for k in ("next", "records") if k in resume}
        ticks = generate_trades(spec)
        super().__init__(TickColumns(ticks, spec.symbol), yields_bars=False, symbol=spec.symbol, speed=speed,
                         resume=resume, source=f"synthetic {spec.symbol} ({digest})", max_wait_seconds=max_wait_seconds,
                         clock=clock, sleep=sleep)

    def resume_token(self) -> dict:
        return {**super().resume_token(), "spec": self.digest}
