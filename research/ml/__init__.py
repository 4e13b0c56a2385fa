"""Meta-labelling of Battle Navale signals: which trades are worth taking.

- :mod:`research.ml.features`: the feature registry and its leakage guard (entry context only);
- :mod:`research.ml.bars`: causal bar features (realised volatility, delta z-score);
- :mod:`research.ml.dataset`: ``MLDataProcessor`` (snapshots -> clean -> features -> labels) and ``MLDataset``;
- :mod:`research.ml.splits`: ``PurgedKFold`` (time-ordered, purged, embargoed) and the out-of-sample split;
- :mod:`research.ml.model`: ``SimpleLinearModel`` (scaler + logistic regression) and its save/load;
- :mod:`research.ml.validate`: ``ModelValidator`` (CV, OOS, importance, overfitting, economic test).
"""

from __future__ import annotations

from research.ml.dataset import MLDataProcessor, MLDataset
from research.ml.features import FEATURES, Feature, LeakageError
from research.ml.splits import PurgedKFold, time_split

__all__ = ["MLDataProcessor", "MLDataset", "FEATURES", "Feature", "LeakageError", "PurgedKFold", "time_split"]
