"""Seeded synthetic ES trade generator: the embedded default data set of a fresh clone.

What it models (enough structure for the method and the live-feed tests to be meaningful):
- CME calendar: Sunday-Friday sessions from 17:00 CT, daily halt 16:00-17:00 CT, weekends off,
  on real dates (the default span crosses the March 2024 DST change);
- an intraday intensity profile: quiet Asia, busier London, a U-shaped RTH (09:30-16:00 ET)
  with the open and the close the busiest;
- volatility clustering: a log-volatility AR(1) state per minute scales trade intensity and
  shrinks book depth;
- aggressor imbalance that drives price: a persistent buy-probability state; buys eat the
  ask queue and sells the bid queue, and the price ticks when a queue is exhausted;
- a 1-tick spread, trades at the bid (sell aggressor) or ask (buy aggressor), heavy-tailed sizes.

Output is real Sierra ``.scid`` single-trade files (High = ask, Low = bid, Close = price)
whose header carries a ``navale-synthetic`` mark, so every frame loaded from them has
``attrs['synthetic'] = True`` and reports say so.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from strategy.market.clock import CT

from .scid import SCID_HEADER_SIZE, ticks_to_scid_records, write_scid

__all__ = ["SyntheticSpec", "SPEC_BOUNDS", "MAX_DAYS", "generate_trades", "write_synthetic_scid", "default_dataset", "SYNTHETIC_MARK", "is_synthetic_scid"]

GENERATOR_VERSION = 2  # bump whenever the generated trades change, so cached files are regenerated
SYNTHETIC_MARK = b"navale-synthetic"


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic generator (all deterministic given ``seed``)."""

    seed: int = 20240304
    start: str = "2024-03-04"  # first trading date (its session opens 17:00 CT the evening before)
    days: int = 10  # trading dates (weekdays)
    symbol: str = "ESM24"
    tick_size: float = 0.25
    start_price: float = 5150.0
    rth_trades_per_sec: float = 1.6  # mean intensity in RTH at vol = 1
    vol_persistence: float = 0.97  # per-minute AR(1) of log-vol
    vol_of_vol: float = 0.12
    imbalance_persistence: float = 0.985  # per-minute AR(1) of the buy-probability state
    imbalance_scale: float = 0.07
    depth_mean: float = 40.0  # contracts in the best queue at vol = 1

    def __post_init__(self) -> None:
        for name, (lo, hi, unit) in SPEC_BOUNDS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (name in _INT_FIELDS and not isinstance(v, int)) \
                    or not (lo <= v <= hi):
                kind = "an integer" if name in _INT_FIELDS else "a number"
                raise ValueError(f"synthetic {name}={v!r}: must be {kind} from {lo:,} to {hi:,} ({unit})")
        first = _parse_start(self.start)
        last = pd.bdate_range(first, periods=self.days)[-1].date()
        if last > LAST_DATE:
            raise ValueError(f"synthetic start={self.start!r} with days={self.days}: ends {last}, after {LAST_DATE}")

    def digest(self) -> str:
        blob = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


MAX_DAYS = 65  # a quarter of trading dates (~3.7 M trades, ~150 MB file, <1 GB while generating); longer: several --start
FIRST_DATE, LAST_DATE = dt.date(1990, 1, 1), dt.date(2099, 12, 31)  # the calendar's hours table / .scid's time range
# field -> (min, max, unit); every field of SyntheticSpec but symbol and start
SPEC_BOUNDS: dict[str, tuple[float, float, str]] = {
    "seed": (0, 2**32 - 1, "random seed"),
    "days": (1, MAX_DAYS, "trading dates"),
    "tick_size": (1e-6, 100.0, "price points"),
    "start_price": (1.0, 1e6, "price points"),
    "rth_trades_per_sec": (0.01, 50.0, "trades per second"),
    "vol_persistence": (0.0, 0.999, "per-minute AR(1)"),
    "vol_of_vol": (0.0, 1.0, "per-minute log-vol shock"),
    "imbalance_persistence": (0.0, 0.999, "per-minute AR(1)"),
    "imbalance_scale": (0.0, 1.0, "per-minute shock"),
    "depth_mean": (1.0, 10_000.0, "contracts"),
}
_INT_FIELDS = ("seed", "days")


def _parse_start(text: object) -> dt.date:
    """``start`` as a date: strictly YYYY-MM-DD, a real date, from FIRST_DATE on."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"synthetic start={text!r}: must be a date of the form YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"synthetic start={text!r}: not a valid date") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"synthetic start={text!r}: must be from {FIRST_DATE} to {LAST_DATE}")
    return day


def _profile_minutes() -> np.ndarray:
    """Relative trade intensity for each minute of the Globex day (index 0 = 17:00 CT)."""
    m = np.arange(23 * 60)  # 17:00 CT .. 16:00 CT
    ct = (17 * 60 + m) % (24 * 60)  # minute of day, CT
    prof = np.full(m.shape, 0.1)
    prof[(ct >= 2 * 60) & (ct < 7 * 60)] = 0.15  # London
    prof[(ct >= 7 * 60) & (ct < 8 * 60 + 30)] = 0.3  # US pre-market, data releases
    rth = (ct >= 8 * 60 + 30) & (ct < 15 * 60)
    x = (ct[rth] - (8 * 60 + 30)) / 390.0  # 0 .. 1 across RTH
    prof[rth] = 0.45 + 1.6 * (x - 0.5) ** 2 * 4 / 2 + 1.2 * np.exp(-x * 25)  # U shape + opening burst
    prof[(ct >= 15 * 60) & (ct < 16 * 60)] = 0.12
    return prof / prof[rth].mean()


@njit(cache=True)
def _simulate(seed, sess_open_us, n_min, prof, rate, tick, p0, vol_phi, vol_sig, imb_phi, imb_sig, depth_mean, cap):
    """Generate trades for every session. Returns (time_us, price, size, side, bid, ask, n)."""
    np.random.seed(seed)
    t_out = np.empty(cap, np.int64)
    p_out = np.empty(cap, np.float64)
    s_out = np.empty(cap, np.int64)
    d_out = np.empty(cap, np.int8)
    b_out = np.empty(cap, np.float64)
    a_out = np.empty(cap, np.float64)
    k = 0
    bid = np.round(p0 / tick) * tick
    logv = 0.0
    imb = 0.0
    ask_q = depth_mean
    bid_q = depth_mean
    for s in range(sess_open_us.shape[0]):
        t0 = sess_open_us[s]
        last_t = t0 - 1
        for mi in range(n_min):
            logv = vol_phi * logv + vol_sig * np.random.randn()
            imb = imb_phi * imb + imb_sig * np.random.randn()
            vol = np.exp(logv)
            lam = rate * prof[mi] * vol  # trades per second
            p_buy = 0.5 + 0.5 * np.tanh(imb * 4.0) * 0.6
            depth = depth_mean / np.sqrt(vol) * (0.5 + prof[mi] ** 0.5)
            t = 0.0
            while True:
                t += np.random.exponential(1.0 / lam)
                if t >= 60.0:
                    break
                if k >= cap:
                    return t_out, p_out, s_out, d_out, b_out, a_out, k
                tu = t0 + mi * 60_000_000 + np.int64(t * 1e6)
                if tu <= last_t:
                    tu = last_t + 1
                last_t = tu
                u = np.random.random()
                size = 1 + np.int64(np.random.geometric(0.45) - 1)
                if u < 0.02:
                    size += np.int64(np.random.pareto(1.5) * 10)
                side = 1 if np.random.random() < p_buy else -1
                ask = bid + tick
                t_out[k] = tu
                s_out[k] = size
                d_out[k] = side
                b_out[k] = bid
                a_out[k] = ask
                if side > 0:
                    p_out[k] = ask
                    ask_q -= size
                    if ask_q <= 0:
                        bid += tick
                        ask_q = depth * np.random.exponential(1.0)
                        bid_q = depth * np.random.exponential(1.0) * 0.5 + 1.0
                else:
                    p_out[k] = bid
                    bid_q -= size
                    if bid_q <= 0:
                        bid -= tick
                        bid_q = depth * np.random.exponential(1.0)
                        ask_q = depth * np.random.exponential(1.0) * 0.5 + 1.0
                # passive liquidity arrives: queues refill towards the depth level
                ask_q += 0.05 * (depth - ask_q)
                bid_q += 0.05 * (depth - bid_q)
                k += 1
    return t_out, p_out, s_out, d_out, b_out, a_out, k


def session_opens(spec: SyntheticSpec) -> list[pd.Timestamp]:
    """UTC open (17:00 CT the evening before) of each synthetic trading date."""
    days = pd.bdate_range(spec.start, periods=spec.days)
    opens = []
    for d in days:
        prev = (d - pd.Timedelta(days=1)).date()
        opens.append(pd.Timestamp(dt.datetime.combine(prev, dt.time(17, 0))).tz_localize(CT).tz_convert("UTC"))
    return opens


def generate_trades(spec: SyntheticSpec = SyntheticSpec()) -> pd.DataFrame:
    """Synthetic trades as a canonical tick frame (plus ``bid``/``ask``), deterministic in ``spec``."""
    from .ticks import make_tick_frame

    opens = session_opens(spec)
    # Sierra DateTime resolution is 1 µs; keep the generator in µs since the Unix epoch.
    open_us = np.array([o.value // 1000 for o in opens], dtype=np.int64)
    prof = _profile_minutes()
    # room for 2.5x the expected count (mean intensity x E[exp(log-vol)]); reaching it is an error, never a cut
    mean_vol = np.exp(spec.vol_of_vol**2 / (1 - spec.vol_persistence**2) / 2)
    cap = int(spec.rth_trades_per_sec * prof.sum() * 60 * mean_vol * len(opens) * 2.5) + 100_000
    t, p, s, d, b, a, n = _simulate(
        spec.seed, open_us, prof.shape[0], prof, spec.rth_trades_per_sec, spec.tick_size, spec.start_price,
        spec.vol_persistence, spec.vol_of_vol, spec.imbalance_persistence, spec.imbalance_scale, spec.depth_mean, cap,
    )  # fmt: skip
    if n >= cap:
        raise ValueError(f"synthetic generator: more than {cap:,} trades for {spec.days} days; lower rth_trades_per_sec or days")
    frame = make_tick_frame(t[:n] * 1000, p[:n], s[:n], d[:n], attrs={"symbol": spec.symbol, "synthetic": True, "source_format": "synthetic"})
    frame["bid"] = b[:n]
    frame["ask"] = a[:n]
    return frame


def write_synthetic_scid(path: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """Generate trades and write them as a Sierra ``.scid`` file (atomically) with the synthetic mark."""
    ticks = generate_trades(spec)
    rec = ticks_to_scid_records(
        ticks.index.as_unit("ns").asi8, ticks["price"].to_numpy(), ticks["size"].to_numpy(), ticks["side"].to_numpy(), ticks["bid"].to_numpy(), ticks["ask"].to_numpy()
    )
    # the mark goes in the header's reserved bytes (ignored by Sierra Chart), in the same atomic write
    return write_scid(path, rec, header_reserved=SYNTHETIC_MARK)


def is_synthetic_scid(path: str | Path) -> bool:
    """True when a ``.scid`` file was written by this generator."""
    with open(path, "rb") as fh:
        head = fh.read(SCID_HEADER_SIZE)
    return len(head) == SCID_HEADER_SIZE and head[20 : 20 + len(SYNTHETIC_MARK)] == SYNTHETIC_MARK


def default_data_dir() -> Path:
    """Where generated data lives: ``$NAVALE_DATA_DIR`` or ``./data`` (git-ignored)."""
    return Path(os.environ.get("NAVALE_DATA_DIR", "data"))


def default_dataset(spec: SyntheticSpec = SyntheticSpec(), *, directory: str | Path | None = None) -> Path:
    """Path of the embedded default data set, generating it on first use (deterministic, cached)."""
    d = Path(directory) if directory else default_data_dir() / "synthetic"
    path = d / f"{spec.symbol}.synthetic.{spec.digest()}.scid"
    if not path.exists():
        write_synthetic_scid(path, spec)
    return path
