"""results_schema: the names ppo.py and benchmark.py write agree with the code that writes them, the trial
loader keeps what a resumed run redid, and the module (and so plotting) needs no RL stack."""

import json
from pathlib import Path

from models import FFM_MODELS, VARIANT_MODELS, get_model
from models.callbacks import PREFIX
from results_schema import FFM, FFM_ABLATIONS, INTERNALS, LINEAR_ATTENTION, LINEAR_ATTENTION_DOT, load_trial
from tests.modules import RL_STACK, loaded_packages


def test_schema_imports_no_rl_stack() -> None:
    assert not loaded_packages("import results_schema") & RL_STACK


def test_model_and_metric_names_match_the_models() -> None:
    assert (FFM, *FFM_ABLATIONS) == tuple(model.name for model in FFM_MODELS)
    assert f"env_runners/{PREFIX}/" == INTERNALS
    assert get_model(LINEAR_ATTENTION).core_defaults == {}  # the paper's denominator, the core's default
    assert LINEAR_ATTENTION_DOT in [model.name for model in VARIANT_MODELS]
    assert get_model(LINEAR_ATTENTION_DOT).core_defaults == {"denominator": "dot"}


def test_load_trial_keeps_the_resumed_run_of_a_repeated_iteration(tmp_path: Path) -> None:
    """A run stopped after iteration 3 but checkpointed at 2 left its own row 3; the resumed run redid it."""
    rows = [(1, 10.0), (2, 20.0), (3, 30.0), (3, 31.0), (4, 41.0)]
    lines = [
        {"training_iteration": i, "env_runners": {"episode_return_mean": r}, "config": {"env": "X"}} for i, r in rows
    ]
    (tmp_path / "result.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    table = load_trial(tmp_path)
    assert list(table["training_iteration"]) == [1, 2, 3, 4]
    assert list(table["env_runners/episode_return_mean"]) == [10.0, 20.0, 31.0, 41.0]
    assert not any(column.startswith("config/") for column in table.columns)
