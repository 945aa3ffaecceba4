"""What the result files hold: their column and metric names, and the loader of a ppo.py trial.

ppo.py and benchmark.py write these names and plotting reads them. This module imports no ray, torch,
popgym or models, so that figures can be drawn from result files with pandas alone.
"""

import json
from pathlib import Path

import pandas as pd

# ppo.py: a Tune trial folder holds params.json (the trial's config) and result.json (one result per line)
MODEL_KEY = "memory_model"  # the config key naming each trial's model
RETURN_MEAN = "episode_return_mean"  # RLlib's mean episode return, under "env_runners"
MMER = "mmer"  # the running max of the mean episode return (the paper's metric), top level
STEP = "num_env_steps_sampled_lifetime"  # env steps so far, top level
THREADS = "torch_threads"  # torch's intra-op threads of the trial process (top level) and env runners
WALL = "time_total_s"  # Tune's training wall-clock seconds so far (kept across resumes), top level
RETURN = f"env_runners/{RETURN_MEAN}"  # the same names once a result is flattened with "/"
INTERNALS = "env_runners/ffm/"  # models.callbacks.FFMInternalsCallback's metrics in a flattened result
FFM = "RayFFM"  # the FFM model ...
FFM_ABLATIONS = (  # ... and its ablations, in the paper's order (models.FFM_MODELS)
    "RayFFMNoOscillate",
    "RayFFMNoLearnOscillate",
    "RayFFMNoDecay",
    "RayFFMNoLearnDecay",
    "RayFFMNoInGate",
    "RayFFMNoOutGate",
)
LINEAR_ATTENTION = "LinearAttention"  # POPGym's LinearAttention as the paper ran it: (sum phi(q)) (sum z)
LINEAR_ATTENTION_DOT = "LinearAttentionDot"  # ... with popgym 1.0.7's denominator phi(q) . z (models.VARIANT_MODELS)

# benchmark.py's throughput*.csv: one row per model (or FFM-layer reference) and mode
THROUGHPUT_COLUMNS = [
    "model",
    "mode",
    "device",
    "batch",
    "time_steps",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "peak_mem_mb",
    "params",
    "allocator",
]
PROCESS_BASELINE = "process-baseline"

# benchmark_ppo.py's throughput_ppo_cpu.csv: one row per settings label, model, env and learner
PPO_THROUGHPUT_KEY = ["label", "model", "env", "learner"]
PPO_THROUGHPUT_COLUMNS = [
    *PPO_THROUGHPUT_KEY,
    "bptt_cutoff",
    "runners",
    "envs_per_runner",
    "train_batch",
    "minibatch",
    "epochs",
    "epochs_timed",
    "env_steps_per_iteration",
    "sampling_s",
    "learner_s",
    "other_s",
    "env_steps_per_s",
    "minibatches_per_iteration",
    "minibatch_sequences",
    "minibatch_time_steps",
    "loss_rows_per_valid_step",
    "update_ms",
    "plain_update_ms",
    "sampling_limit_steps_per_s",
    "torch_threads",
    "cpus",
    "machine",
    "date",
    "commit",
]  # the row of a process without a model (its peak memory)


def load_trial(trial_dir: Path) -> pd.DataFrame:
    """One trial's results, one row per iteration, columns flattened with "/" (as in progress.csv).

    Reads result.json (JSON lines): Tune's progress.csv fixes its columns at the first row, and a resumed
    RLlib run adds metrics, so later rows of the CSV can be longer than its header. Tune appends to the
    file and does not take back the iterations a stopped run made after its last checkpoint; the resumed
    run makes them again, and its rows are the ones kept.
    """
    lines = (trial_dir / "result.json").read_text().splitlines()
    table = pd.json_normalize([json.loads(line) for line in lines if line.strip()], sep="/")
    table = table.drop(columns=[column for column in table.columns if column.startswith("config/")])
    if "training_iteration" not in table:
        return table
    return table.drop_duplicates("training_iteration", keep="last").reset_index(drop=True)
