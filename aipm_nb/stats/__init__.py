"""Every formula of aipm-nb, on sufficient statistics (numpy/scipy only; nothing sees a row).

- `aipm_nb.stats.ab`: A/B tests (gbstats conventions: Welch t, delta-method relative effects,
  CUPED, SRM, Holm/BH, power), on typed `Moments` / `Paired` sums.
- `aipm_nb.stats.proportions`: Wilson intervals, two-proportion differences, chi-square.
- `aipm_nb.stats.classifier`: AUC with DeLong's SE, AP, log loss, Brier, confusion counts,
  calibration / ECE, thresholds, from `ClassifierSums`.
- `aipm_nb.stats.drift`: PSI and KS from counts.
- `aipm_nb.stats.sequential`: always-valid A/B intervals and p-values (confidence sequences).
- `aipm_nb.stats.monitoring`: KPI rules (robust z, p-chart, statuses).

``alpha`` and ``power`` arguments default to ``None``: the value in `aipm_nb.config`.
The A/B names are re-exported here (``from aipm_nb import stats as st; st.effect``).
"""

from aipm_nb.stats.ab import *  # noqa: F403 (the A/B names, as before the package)
from aipm_nb.stats.ab import __all__ as __all__
