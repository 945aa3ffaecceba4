"""plotting.by_env: FFM against the GRU per env in the authors' units, from trials whose scores are known."""

from pathlib import Path

import pandas as pd
import pytest

from plotting import by_env
from plotting.source import NoResultsError

# final MMER per (env, model) for seeds 0, 1, 2: FFM far ahead on A, level on B, ahead by 1.5 spreads on C
SCORES = {
    ("A", "RayFFM"): [0.50, 0.52, 0.54],
    ("A", "GRU"): [0.00, 0.02, 0.04],
    ("B", "RayFFM"): [-0.30, -0.20, -0.10],
    ("B", "GRU"): [-0.25, -0.20, -0.15],
    ("C", "RayFFM"): [0.25, 0.30, 0.35],
    ("C", "GRU"): [0.175, 0.225, 0.275],
}


def trials() -> pd.DataFrame:
    """Two iterations per trial (the final MMER is the last one's)."""
    rows = []
    for (env, model), scores in SCORES.items():
        for seed, score in enumerate(scores):
            rows.append({"env": env, "model": model, "seed": seed, "step": 100, "mmer": -1.0, "wall_s": 1.0})
            rows.append({"env": env, "model": model, "seed": seed, "step": 200, "mmer": score, "wall_s": 2.0})
    return pd.DataFrame(rows)


def test_relative_scores_and_verdicts_follow_the_authors_units_and_the_rule() -> None:
    table = by_env.relative_by_env(by_env.ffm_and_gru(trials())).set_index("env")
    for env in "ABC":
        gru = sum(0.5 * s + 0.5 for s in SCORES[env, "GRU"]) / 3
        relative = [100 * ((0.5 * s + 0.5) - gru) / gru for s in SCORES[env, "RayFFM"]]
        assert table.loc[env, "relative"] == pytest.approx(sum(relative) / 3)
        assert table.loc[env, "relative_std"] == pytest.approx(pd.Series(relative).std())
    assert table["verdict"].to_dict() == {"A": "won", "B": "tied", "C": "inconclusive"}
    assert list(table.index) == sorted(table.index, key=lambda env: table.loc[env, "relative"])
    assert by_env.verdict_counts(table) == {"won": 1, "tied": 1, "inconclusive": 1, "behind": 0}


def test_model_means_are_over_envs_then_seeds() -> None:
    means = by_env.model_means(by_env.ffm_and_gru(trials())).set_index("model")
    for model in ("RayFFM", "GRU"):
        per_seed = [sum(0.5 * SCORES[env, model][seed] + 0.5 for env in "ABC") / 3 for seed in range(3)]
        assert means.loc[model, "mean"] == pytest.approx(sum(per_seed) / 3)
        assert means.loc[model, "std"] == pytest.approx(pd.Series(per_seed).std())
    assert set(means["envs"]) == {3} and set(means["seeds"]) == {3}


def test_the_figure_is_drawn_and_a_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    assert by_env.by_env_figure(trials(), tmp_path).exists()
    with pytest.raises(NoResultsError, match="no env has results of both RayFFM and GRU"):
        by_env.ffm_and_gru(trials().query("model == 'RayFFM'"))


def test_the_next_paper_settings_env_is_the_largest_unsaturated_lead_beyond_the_spread() -> None:
    table = by_env.relative_by_env(by_env.ffm_and_gru(trials()))
    # A: FFM leads by 0.5 with spread 0.02; C: by 0.075 with spread 0.05 (beyond it by 0.025); B: level
    env, why = by_env.next_paper_settings_env(table, already=())
    assert env == "A" and "+0.500, 0.480 beyond the seeds' spread" in why
    # A saturated: C is the only lead beyond the spread left
    saturated = table.assign(ffm_mean=table["ffm_mean"].where(table["env"] != "A", 0.96))
    assert by_env.next_paper_settings_env(saturated, already=())[0] == "C"
    # already run: skipped; with no lead beyond the spread, the smallest gap (B: FFM level with the GRU)
    env, why = by_env.next_paper_settings_env(table, already=("A", "C"))
    assert env == "B" and "on none of the 1 envs" in why
    behind = table.assign(ffm_mean=table["gru_mean"] - table["env"].map({"A": 0.3, "B": 0.2, "C": 0.1}))
    assert by_env.next_paper_settings_env(behind, already=())[0] == "C"
    with pytest.raises(NoResultsError, match="every env is saturated"):
        by_env.next_paper_settings_env(table, already=("A", "B", "C"))
