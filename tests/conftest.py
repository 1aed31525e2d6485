from __future__ import annotations

from pathlib import Path

import pytest

from aipm_nb import synthetic

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def events_df():
    return synthetic.generate_events()


@pytest.fixture(scope="session")
def experiment_df():
    return synthetic.generate_experiment()


@pytest.fixture(scope="session")
def predictions_df():
    return synthetic.generate_predictions(return_truth=True)
