"""What every POPGym results source gives plotting: Run records, or NoResultsError when it holds none."""

from collections.abc import Mapping
from typing import NamedTuple

import pandas as pd

from results_schema import MMER, RETURN, STEP, WALL

HISTORY_KEYS = (STEP, RETURN, MMER)  # besides the FFM internals, what a run's history must have
OPTIONAL_KEYS = (WALL,)  # read where a run has them (NaN where not)


class NoResultsError(RuntimeError):
    """The source holds no results to plot."""


class Run(NamedTuple):
    """One ppo.py trial from any source: its config (env, memory_model, seed, ...) and its flattened history."""

    config: Mapping
    history: pd.DataFrame
