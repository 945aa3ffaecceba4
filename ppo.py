"""The paper's POPGym experiments: PPO with every memory model on every popgym env (Ray Tune + RLlib).

    POPGYM_MODELS=RayFFM,GRU POPGYM_EXPERIMENT=RepeatPreviousEasy python ppo.py

Every setting is an environment variable (the authors' interface) and a flag (``python ppo.py --help``);
a flag wins over its variable. The grid env x model x seed runs as Tune trials named
``<Env>-<Model>-<seed>``; results land in ``<storage>/<name>/`` (Tune's result.json and progress.csv per
trial) and, with a wandb project, in wandb (offline unless WANDB_MODE says otherwise). Running the same
command again resumes: finished trials are kept, unfinished ones continue from their last checkpoint.
With RAY_ADDRESS (``--address``) set, the trials spread over that Ray cluster: this checkout and the
``ffm`` package travel with the job (Ray's runtime environment), so the nodes need only the dependencies,
and ``--storage`` must be a folder every node can reach. A trial that fails, e.g. because its node died,
is retried from its last checkpoint (``--max-failures``). Without a cluster, a grid whose trials cannot fit this
machine (a CPU per env runner and one for the learner: ``--workers 4`` asks for 5) is refused before Ray starts,
with the settings that fit (``--workers 0 --envs-per-worker 64``: the paper's batch on one core per trial).
"""

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import popgym.envs
from popgym.wrappers import Antialias, PreviousAction
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.tune import Callback
from tqdm import tqdm

from models import FFM_MODELS, MODEL_GROUPS, MODELS, parse_names
from models.callbacks import PER_UNIT, PREFIX, FFMInternalsCallback
from results_schema import MMER, MODEL_KEY, RETURN_MEAN, STEP, THREADS

REPO = Path(__file__).resolve().parent
ENV_GROUPS = ("ALL", "DIAGNOSTIC", "CONTROL", "NOISY", "GAME", "NAVIGATION")
ADDED_AFTER_THE_PAPER = ("VelocityOnlyCartPole",)  # popgym envs the paper's POPGym (689d89b) did not have


def popgym_envs() -> dict[str, type]:
    """Every popgym env class by class name, in popgym's order."""
    return {cls.__name__: cls for cls in popgym.envs.ALL}


def env_groups() -> dict[str, list[str]]:
    """popgym's env groups (ALL, DIAGNOSTIC, ..., and their _EASY/_MEDIUM/_HARD parts) -> env names.

    As the paper's groups (POPGym 689d89b): popgym 1.0.7's VelocityOnlyCartPole, added after the paper,
    is left out of them (it still runs by name).
    """
    groups = {}
    for group in ENV_GROUPS:
        for name in (group, *(f"{group}_{level}" for level in ("EASY", "MEDIUM", "HARD"))):
            members = getattr(popgym.envs, name, None) or getattr(popgym.envs, f"ALL_{name}", None)
            if members:
                groups[name] = [cls.__name__ for cls in members if not cls.__name__.startswith(ADDED_AFTER_THE_PAPER)]
    return groups


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    envs: tuple[str, ...]
    steps: int
    samples: int
    seeds: tuple[int, ...]  # the ones of range(samples) this run trains
    workers: int
    envs_per_worker: int
    bptt_cutoff: int
    minibatch: int
    gpu: float
    project: str
    storage: Path
    name: str
    checkpoint_every: int
    verbose: bool
    address: str
    max_failures: int

    @property
    def train_batch_size(self) -> int:
        """BPTT_CUTOFF x WORKERS x ENVS_PER_WORKER (with 0 remote workers the local one samples)."""
        return self.bptt_cutoff * max(self.workers, 1) * self.envs_per_worker

    @property
    def minibatch_size(self) -> int:
        return self.minibatch * self.bptt_cutoff


# flag, environment variable, default, help
OPTIONS = (
    ("models", "POPGYM_MODELS", "RayFFM", "comma list of model names, or ALL (the paper's 20)"),
    ("experiment", "POPGYM_EXPERIMENT", "ALL", "comma list of popgym env groups or env class names"),
    ("steps", "POPGYM_STEPS", "15e6", "env steps per trial"),
    ("samples", "POPGYM_SAMPLES", "1", "seeds per env x model (0 .. SAMPLES-1)"),
    ("seeds", "POPGYM_SEEDS", "", "run only these of them (comma list, e.g. 2: a grid run in chunks); empty: all"),
    ("workers", "POPGYM_WORKERS", "4", "remote env runners per trial (0: sample in the trial process)"),
    ("envs-per-worker", "POPGYM_ENVS_PER_WORKER", "16", "vectorised envs per env runner"),
    ("bptt-cutoff", "POPGYM_BPTT_CUTOFF", "1024", "max_seq_len and rollout fragment length"),
    ("minibatch", "POPGYM_MINIBATCH", "8", "minibatch size in units of BPTT_CUTOFF steps"),
    ("gpu", "POPGYM_GPU", None, "GPUs per learner (default: 1 if a GPU is visible, else 0)"),
    ("project", "POPGYM_PROJECT", "", "wandb project; empty: no wandb"),
    ("storage", "POPGYM_STORAGE", str(REPO / "results"), "results root"),
    ("name", "POPGYM_NAME", "popgym-ppo", "experiment name: the folder under the storage root"),
    ("num-splits", "POPGYM_NUM_SPLITS", "1", "split the env list into this many parts ..."),
    ("split-id", "POPGYM_SPLIT_ID", "0", "... and run this one (0-based)"),
    ("checkpoint-every", "POPGYM_CHECKPOINT_EVERY", "10", "checkpoint every this many iterations"),
    ("address", "RAY_ADDRESS", "", "Ray cluster to run on (its head's host:port, or auto); empty: this machine"),
    ("max-failures", "POPGYM_MAX_FAILURES", "3", "retries of a failed trial (e.g. its node died), from its checkpoint"),
)
# RLlib's own log lines that report no problem and that no setting of ours removes (ray 2.60): the notice that
# PPO runs on the new API stack (which is what we use), and the deprecation of RLModuleConfig, an object
# RLlib's RLModule.__init__ builds itself. Hidden by their exact start, in the driver and in every worker.
RLLIB_NOTICES = {
    "ray.rllib.algorithms.algorithm_config": "You are running PPO on the new API stack!",
    "ray._common.deprecation": "DeprecationWarning: `RLModule(config=[RLModuleConfig object])` has been deprecated.",
}
# settings that may change between a run and its resumption: they do not change the grid
NOT_THE_GRID = ("project", "address")


CPU_ENVS = (
    "RepeatFirstEasy,RepeatPreviousEasy,CountRecallEasy,"  # diagnostic
    "PositionOnlyCartPoleEasy,NoisyPositionOnlyCartPoleEasy,BattleshipEasy"  # control, noisy, game
)

# The README's `make demo`: a small real reproduction (minutes on 2 cores) in which memory matters.
PRESETS = {
    "demo": {
        "models": "RayFFM,GRU,BasicMLP",
        "experiment": "PositionOnlyCartPoleEasy,RepeatPreviousEasy",
        "steps": "40960",
        "workers": "0",
        "envs-per-worker": "8",
        "bptt-cutoff": "128",
        "minibatch": "4",
        "name": "demo",
    },
    # The README's Results on one 2-core machine (issue 8): six envs over four groups, 3 seeds, a CPU budget.
    "cpu": {
        "models": "RayFFM,GRU,LSTM,BasicMLP,LinearAttention,S4D",
        "experiment": CPU_ENVS,
        "steps": "24576",
        "samples": "3",
        "workers": "0",
        "envs-per-worker": "16",
        "bptt-cutoff": "64",
        "minibatch": "8",
        "name": "cpu",
    },
}
# Issue 16's main comparison at ten times the cpu preset's budget, same PPO settings; run one env per session
# (--experiment ENV --name cpu-10x-ENV), each chunk's tables committed when it ends.
PRESETS["cpu-10x"] = PRESETS["cpu"] | {
    "models": "RayFFM,GRU",
    "experiment": "RepeatFirstEasy,RepeatPreviousEasy,NoisyPositionOnlyCartPoleEasy",
    "steps": "245760",
    "name": "cpu-10x",
}
# The per-env comparison: RayFFM and the GRU on the Easy level of all 15 env families at cpu-10x's budget and
# settings, all at one commit; run one env per session (--experiment ENV --name cpu-10x-all-ENV), each chunk's
# tables committed to results/cpu-10x-all/ENV when it ends.
PRESETS["cpu-10x-all"] = PRESETS["cpu-10x"] | {"experiment": "ALL_EASY", "name": "cpu-10x-all"}
# The authors' discussion of RepeatPrevious (issue 28): FFM initialised at the env's time scales against RayFFM
# and the GRU at the cpu-10x budget; its RepeatPreviousEasy RayFFM and GRU trials are cpu-10x's, so that chunk
# runs --models RayFFM_32_104 only (results/README.md).
PRESETS["cpu-10x-init"] = PRESETS["cpu-10x"] | {
    "models": "RayFFM,RayFFM_32_104,GRU",
    "experiment": "RepeatPreviousEasy,RepeatPreviousMedium",
    "name": "cpu-10x-init",
}
# The same comparison at the paper's PPO settings (issue 28): the defaults' batch of 65,536 env steps (BPTT 1024,
# minibatch 8,192, 30 epochs) from 64 envs sampled in the trial process instead of 4 runners x 16, RayFFM and the
# GRU on RepeatPreviousEasy, 40 batches per trial (about six hours of the 2-core machine for the 6 trials); run
# one seed per session (--seeds S --name paper-settings-seedS), two trials at a time.
PRESETS["paper-settings"] = {
    "models": "RayFFM,GRU",
    "experiment": "RepeatPreviousEasy",
    "steps": str(40 * 65_536),
    "samples": "3",
    "workers": "0",
    "envs-per-worker": "64",
    "name": "paper-settings",
}
# The six RayFFM ablations on two of those envs, same budget; their RayFFM reference is the "cpu" run.
PRESETS["cpu-ablations"] = PRESETS["cpu"] | {
    "models": ",".join(model.name for model in FFM_MODELS[1:]),
    "experiment": "RepeatPreviousEasy,PositionOnlyCartPoleEasy",
    "name": "cpu-ablations",
}


def parse_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] = os.environ) -> Settings:
    """Settings from flags and POPGYM_* variables, validated; bad values exit with one clear message.

    Precedence: flag, then environment variable, then the chosen preset, then the default.
    """
    preset_parser = argparse.ArgumentParser(add_help=False)
    preset_parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=environ.get("POPGYM_PRESET"),
        help="start from a preset's settings (demo: the README's quick reproduction) [POPGYM_PRESET]",
    )
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="Each flag can also be given as its environment variable; the flag wins.",
        parents=[preset_parser],
    )
    preset = PRESETS.get(preset_parser.parse_known_args(argv)[0].preset, {})
    for flag, variable, default, help_text in OPTIONS:
        shown = "auto" if default is None else default
        parser.add_argument(
            f"--{flag}",
            default=environ.get(variable, preset.get(flag, default)),
            help=f"{help_text} [{variable}, default {shown}]",
        )
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=environ.get("POPGYM_VERBOSE", "") == "1",
        help="Tune's and Ray's full console output (trial configs, status tables, worker logs) instead of the "
        "progress bars; otherwise they go to the log files in the experiment folder [POPGYM_VERBOSE=1]",
    )
    args = parser.parse_args(argv)

    def number(flag: str, kind: type, minimum: float) -> float:
        text = str(getattr(args, flag.replace("-", "_")))
        value = _parse_number(text, kind)
        if value is None:
            parser.error(f"--{flag}: expected {'a whole number' if kind is int else 'a number'}, got {text!r}")
        if value < minimum:
            parser.error(f"--{flag}: expected a value >= {minimum}, got {value}")
        return value

    try:
        models = parse_names(args.models, list(MODELS), MODEL_GROUPS, "model")
        envs = parse_names(args.experiment, list(popgym_envs()), env_groups(), "env")
    except ValueError as error:
        parser.error(str(error))
    splits, split_id = number("num-splits", int, 1), number("split-id", int, 0)
    if split_id >= splits:
        parser.error(f"--split-id: expected 0 <= split id < {splits} (--num-splits), got {split_id}")
    envs = envs[split_id::splits]
    if not envs:
        parser.error(f"split {split_id} of {splits} holds no env: fewer envs than splits")
    samples = number("samples", int, 1)
    seeds = parse_seeds(args.seeds, samples)
    if isinstance(seeds, str):
        parser.error(seeds)
    if args.gpu is None:
        args.gpu = str(int(_gpu_visible()))
    if args.address and Path(args.storage).resolve() == REPO / "results":
        parser.error("--storage: on a cluster (--address), give a folder every node can reach (shared filesystem)")
    return Settings(
        models=tuple(models),
        envs=tuple(envs),
        steps=number("steps", int, 1),
        samples=samples,
        seeds=seeds,
        workers=number("workers", int, 0),
        envs_per_worker=number("envs-per-worker", int, 1),
        bptt_cutoff=number("bptt-cutoff", int, 1),
        minibatch=number("minibatch", int, 1),
        gpu=number("gpu", float, 0),
        project=args.project,
        storage=Path(args.storage).resolve(),
        name=args.name,
        checkpoint_every=number("checkpoint-every", int, 1),
        verbose=args.verbose,
        address=args.address,
        max_failures=number("max-failures", int, -1),
    )


def parse_seeds(text: str, samples: int) -> tuple[int, ...] | str:
    """'0,2' -> (0, 2), checked against range(samples); '' -> all of them; an error message if invalid."""
    if not text.strip():
        return tuple(range(samples))
    seeds = [_parse_number(part, int) for part in text.split(",")]
    if any(seed is None or not 0 <= seed < samples for seed in seeds) or len(set(seeds)) != len(seeds):
        return f"--seeds: expected distinct whole numbers in 0 .. {samples - 1} (--samples {samples}), got {text!r}"
    return tuple(sorted(seeds))


def _parse_number(text: str, kind: type) -> float | None:
    """'15e6' -> 15000000 for kind int; None if text is no finite number (or no whole one for int)."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or (kind is int and value != int(value)):
        return None
    return kind(value)


def _gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


def make_env(name: str):
    """popgym env ``name`` with popgym's PreviousAction and Antialias wrappers, as in the paper."""
    return Antialias(PreviousAction(popgym_envs()[name]()))


class MMERCallback(RLlibCallback):
    """Adds MMER, the running max of the mean episode return (the paper's metric), to every result.

    The running max is kept as a lifetime sum of its increments in the algorithm's metrics logger: RLlib
    checkpoints lifetime sums (like the step counters), so MMER survives a resume.
    """

    def on_train_result(self, *, algorithm, metrics_logger, result: dict, **kwargs) -> None:
        # an iteration without a finished episode has no return: NaN keeps the column in Tune's CSV,
        # whose columns are fixed by the first row
        current = _finite_or(result.setdefault("env_runners", {}).setdefault(RETURN_MEAN, math.nan), None)
        best = _finite_or(metrics_logger.peek(MMER, default=math.nan), None)
        if current is not None and (best is None or current > best):
            metrics_logger.log_value(MMER, current - (best or 0.0), reduce="lifetime_sum")
            best = current
        result[MMER] = math.nan if best is None else best


class TorchThreads(RLlibCallback):
    """Each trial process and env runner computes on as many torch threads as Ray gave it CPUs.

    Ray sets OMP_NUM_THREADS to a worker's CPUs only after torch has read it, so without this every
    trial and env runner would run a thread per core of its node: two 1-CPU trials on 2 cores, or 64 on
    a 64-core node, each spinning on every core. Every result records the threads (``torch_threads``:
    the trial's; ``env_runners/torch_threads``: the most of any env runner's).
    """

    def on_algorithm_init(self, *, algorithm, **kwargs) -> None:
        use_assigned_cpus()

    def on_environment_created(self, *, env_runner, **kwargs) -> None:
        use_assigned_cpus()

    def on_sample_end(self, *, metrics_logger=None, **kwargs) -> None:
        import torch

        if metrics_logger is not None:
            metrics_logger.log_value(THREADS, torch.get_num_threads(), reduce="max")

    def on_train_result(self, *, result: dict, **kwargs) -> None:
        import torch

        result[THREADS] = torch.get_num_threads()


def use_assigned_cpus() -> None:
    """torch's intra-op threads = the CPUs Ray assigned this worker (nothing outside a Ray worker)."""
    import ray
    import torch

    if not ray.is_initialized() or ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
        return
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU") or 1
    torch.set_num_threads(max(int(cpus), 1))


def trial_resources(settings: Settings) -> dict[str, float]:
    """What one trial asks Ray for (RLlib's PPO.default_resource_request of build_config): a CPU for the trial
    process, which holds the learner and, with --workers 0, samples too; a CPU per env runner; the learner's
    GPUs. Builds no Ray cluster."""
    from ray.rllib.algorithms.ppo import PPO

    required = PPO.default_resource_request(build_config(settings)).required_resources
    return {"CPU": required.get("CPU", 0), "GPU": required.get("GPU", 0)}


def local_resources() -> dict[str, float]:
    """The CPUs and GPUs Ray would find on this machine (its own count, which honours a container's quota)."""
    import torch

    try:
        from ray._private.utils import get_num_cpus

        cpus = get_num_cpus()
    except ImportError:  # Ray moved its private helper: the machine's count
        cpus = os.cpu_count() or 1
    return {"CPU": cpus, "GPU": torch.cuda.device_count()}


def unfit_for_this_machine(settings: Settings, available: Mapping[str, float]) -> str | None:
    """Why a trial cannot start on a machine with ``available`` CPUs and GPUs (Ray would wait for it forever),
    with the settings that fit; None when it fits."""
    asked = trial_resources(settings)
    short = [kind for kind in asked if asked[kind] > available.get(kind, 0)]
    if not short:
        return None
    envs = max(settings.workers, 1) * settings.envs_per_worker
    fixes = []
    if "CPU" in short:
        fixes.append(
            f"sample in the trial process, --workers 0 --envs-per-worker {envs} (the same batch of "
            f"{settings.bptt_cutoff * envs:,} env steps on one core per trial, as the committed runs used)"
        )
    if "GPU" in short:
        fixes.append("train on the CPU, --gpu 0")

    def count(number: float, kind: str) -> str:
        return f"{number:g} {kind}{'' if number == 1 else 's'}"

    here = f"{count(available.get('CPU', 0), 'CPU')} and {count(available.get('GPU', 0), 'GPU')}"
    return (
        f"a trial asks for {count(asked['CPU'], 'CPU')} ({settings.workers} env runners + 1 for the trial's "
        f"learner) and {count(asked['GPU'], 'GPU')}, but this machine has {here}, so Ray would wait for it "
        f"forever. To fit: {'; '.join(fixes)}; or run on a Ray cluster (--address)."
    )


def _finite_or(value: float | None, default: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else default


def build_config(settings: Settings):
    """The PPO AlgorithmConfig shared by every trial (env, model and seed are filled in per trial)."""
    from ray.rllib.algorithms.ppo import PPOConfig

    from models.learner import TrimmedPPOTorchLearner

    return (
        PPOConfig()
        .env_runners(
            num_env_runners=settings.workers,
            num_envs_per_env_runner=settings.envs_per_worker,
            rollout_fragment_length=settings.bptt_cutoff,
            # the authors' ppo.py: whole episodes (their RLlib's truncate_episodes shrank the time dimension)
            batch_mode="complete_episodes",
        )
        # the learner works on each minibatch up to its longest sequence, as RLlib 2.0 padded it
        .learners(num_learners=0, num_gpus_per_learner=settings.gpu, learner_class=TrimmedPPOTorchLearner)
        .training(
            gamma=0.99,
            vf_loss_coeff=1.0,
            train_batch_size_per_learner=settings.train_batch_size,
            minibatch_size=settings.minibatch_size,
            # classic RLlib PPO defaults, as the paper used them
            lr=5e-5,
            num_epochs=30,
            clip_param=0.3,
            lambda_=1.0,
            kl_coeff=0.2,
            kl_target=0.01,
            entropy_coeff=0.0,
            vf_clip_param=10.0,
        )
        .rl_module(model_config={"max_seq_len": settings.bptt_cutoff})
        .callbacks([TorchThreads, FFMInternalsCallback, MMERCallback])
    )


def runtime_env(address: str, environ: Mapping[str, str] = os.environ) -> dict:
    """Ray's runtime environment for the trials: how their workers find this repository's code.

    On this machine they import it from this checkout. On a cluster nothing of it need be installed on
    the nodes: the checkout (less what .gitignore leaves out) travels as the job's working_dir and the
    ffm package, which lives in standalone/, as a py_module; each node unpacks them under its
    runtime_resources folder. A Ray job submitted with ``--working-dir .`` has shipped the checkout already.
    """
    if not address:
        return {"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO), environ.get("PYTHONPATH", "")])}}
    shipped = {"py_modules": [str(REPO / "standalone" / "ffm")]}
    job = json.loads(environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}"))  # set by Ray Jobs for the entrypoint
    if "working_dir" not in job.get("runtime_env", {}):
        shipped["working_dir"] = str(REPO)
    return shipped


def trial_name(trial) -> str:
    """<Env>-<Model>-<seed>."""
    return f"{trial.config['env']}-{trial.config[MODEL_KEY]}-{trial.config['seed']}"


def run(settings: Settings):
    """Run (or resume) the grid; returns Tune's ResultGrid. Without a cluster (--address), a trial that cannot
    fit this machine ends the run before Ray starts (unfit_for_this_machine)."""
    hide_rllib_notices()
    if not settings.address:
        unfit = unfit_for_this_machine(settings, local_resources())
        if unfit:
            sys.exit(f"ppo.py: {unfit}")
    if settings.project:
        os.environ.setdefault("WANDB_MODE", "offline")  # before Ray starts: the integration reads it there
    # no automatic TensorBoard logger: it warns "NaN or Inf found in input tensor" at the NaN MMER of every
    # iteration without a finished episode (result.json and progress.csv are the logs this project reads)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    if not settings.verbose:  # Tune's new console prints its experiment table even when told to be silent
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    import ray
    from ray import tune
    from ray.rllib.algorithms.ppo import PPO

    from models.rllib import module_spec

    experiment = settings.storage / settings.name
    _check_same_experiment(experiment, settings)
    experiment.mkdir(parents=True, exist_ok=True)
    route_ray_logs(settings, experiment)
    ray.init(
        address=settings.address or None,
        log_to_driver=settings.verbose,  # otherwise each trial's output goes to stdout / stderr in its folder
        runtime_env=runtime_env(settings.address) | {"worker_process_setup_hook": hide_rllib_notices},
    )
    for env in settings.envs:
        tune.register_env(env, lambda config, env=env: make_env(env))
    param_space = build_config(settings).to_dict() | {
        "env": tune.grid_search(list(settings.envs)),
        MODEL_KEY: tune.grid_search(list(settings.models)),
        # resolved per trial from the model name: Tune keeps primitive grid values readable (trial names)
        "_rl_module_spec": tune.sample_from(lambda config: module_spec(config[MODEL_KEY])),
        "seed": tune.grid_search(list(settings.seeds)),
    }
    run_config = tune.RunConfig(
        name=settings.name,
        storage_path=str(settings.storage),
        stop={STEP: settings.steps},
        checkpoint_config=tune.CheckpointConfig(
            checkpoint_frequency=settings.checkpoint_every, checkpoint_at_end=True, num_to_keep=1
        ),
        callbacks=_callbacks(settings),
        verbose=1 if settings.verbose else 0,
        log_to_file=True,  # each trial's stdout and stderr, copied into its folder (sync_artifacts)
        sync_config=tune.SyncConfig(sync_artifacts=True),
        failure_config=tune.FailureConfig(max_failures=settings.max_failures),  # retried from a checkpoint
    )
    if tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(str(experiment), trainable=PPO, resume_unfinished=True, resume_errored=True)
        # Tune restores the first run's RunConfig; this run's console and loggers replace it
        restored = tuner._local_tuner.get_run_config()
        for key in ("callbacks", "verbose", "log_to_file", "sync_config"):
            setattr(restored, key, getattr(run_config, key))
    else:
        tuner = tune.Tuner(
            PPO,
            param_space=param_space,
            tune_config=tune.TuneConfig(trial_name_creator=trial_name, trial_dirname_creator=trial_name),
            run_config=run_config,
        )
    (experiment / "settings.json").write_text(json.dumps(_settings_record(settings), indent=2))
    return tuner.fit()


# Tune's warning that no trial can be placed (too few CPUs or GPUs on the cluster for one trial), once a minute
UNPLACEABLE_LOGGER = "ray.tune.execution.insufficient_resources_manager"


def route_ray_logs(settings: Settings, experiment: Path) -> None:
    """Ray's and Tune's log lines to ray.log in the experiment folder (the console with --verbose), except
    Tune's warning that no trial can be placed, which reaches the console too: on a cluster it is the one
    word of why nothing runs."""
    if settings.verbose:
        return
    logging.getLogger("ray").handlers = [logging.FileHandler(experiment / "ray.log")]
    unplaceable = logging.getLogger(UNPLACEABLE_LOGGER)
    unplaceable.handlers = [logging.StreamHandler(sys.stderr)]
    unplaceable.handlers[0].setLevel(logging.WARNING)


def hide_rllib_notices() -> None:
    """Drop RLLIB_NOTICES from Ray's logs (in this process; Ray runs it in every worker too)."""
    for logger, notice in RLLIB_NOTICES.items():
        logging.getLogger(logger).addFilter(lambda record, notice=notice: not record.getMessage().startswith(notice))


def _callbacks(settings: Settings) -> list:
    """Tune's result.json and progress.csv loggers, wandb if a project is set, and the progress bars."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    callbacks = [JsonLoggerCallback(), CSVLoggerCallback()]
    if settings.project:
        callbacks.append(_wandb_callback(settings))
    if not settings.verbose:
        callbacks.append(TrialProgress(settings))
    return callbacks


class TrialProgress(Callback):
    """The console of a run: a progress bar per running trial (env, model, seed, env steps of the target,
    MMER, elapsed time) under one for all trials (with the time left), and a line per finished trial.

    On a terminal the bars redraw in place. Elsewhere (a pipe, a log file) they are written out as lines
    every ``LINES_EVERY_S`` seconds.
    """

    LINES_EVERY_S = 60

    def __init__(self, settings: Settings):
        self.steps = settings.steps
        self.trials = len(settings.envs) * len(settings.models) * len(settings.seeds)
        self.name_width = (
            max(map(len, settings.envs)) + max(map(len, settings.models)) + len(str(max(settings.seeds))) + 2
        )

    def setup(self, **info) -> None:
        self.terminal = sys.stderr.isatty()
        self.screen = sys.stderr if self.terminal else open(os.devnull, "w")  # noqa: SIM115 (closed at the end)
        self.total = self._bar("all trials", self.trials * self.steps, leave=True)
        self.bars: dict[str, tqdm] = {}
        self.written = time.monotonic()

    def _bar(self, name: str, total: int, leave: bool) -> tqdm:
        layout = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}]{postfix}"
        desc = name.ljust(self.name_width)
        return tqdm(total=total, desc=desc, unit_scale=True, bar_format=layout, file=self.screen, leave=leave)

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        for trial in trials:
            if trial.status == trial.RUNNING:
                self._show(trial)
        self._advance(self.total, sum(self._steps(trial) for trial in trials))
        if not self.terminal and time.monotonic() - self.written >= self.LINES_EVERY_S:
            for bar in (self.total, *self.bars.values()):
                tqdm.write(str(bar), file=sys.stderr)
            self.written = time.monotonic()

    def _show(self, trial) -> None:
        if trial.trial_id not in self.bars:
            self.bars[trial.trial_id] = self._bar(trial_name(trial), self.steps, leave=False)
        bar = self.bars[trial.trial_id]
        mmer = trial.last_result.get(MMER)
        if mmer is not None and math.isfinite(mmer):
            bar.set_postfix_str(f"MMER {mmer:.3f}", refresh=False)
        self._advance(bar, self._steps(trial))

    def _steps(self, trial) -> int:
        return min(trial.last_result.get(STEP, 0), self.steps)

    @staticmethod
    def _advance(bar: tqdm, steps: int) -> None:
        if steps != bar.n:
            bar.update(steps - bar.n)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._finish(trial, "done")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._finish(trial, f"FAILED (see {trial.path}/error.txt)")

    def _finish(self, trial, outcome: str) -> None:
        bar = self.bars.pop(trial.trial_id, None)
        if bar is not None:
            bar.close()
        result = trial.last_result
        mmer = result.get(MMER, math.nan)
        elapsed = tqdm.format_interval(result.get("time_total_s", 0))
        steps = int(result.get(STEP, 0))
        line = f"{trial_name(trial).ljust(self.name_width)} {outcome}: {steps:,} steps, MMER {mmer:.3f}, {elapsed}"
        tqdm.write(line, file=sys.stderr)

    def on_experiment_end(self, trials: list, **info) -> None:
        self._advance(self.total, sum(self._steps(trial) for trial in trials))  # a resume may have nothing to run
        self.total.close()
        if not self.terminal:
            tqdm.write(str(self.total), file=sys.stderr)
            self.screen.close()


def _settings_record(settings: Settings) -> dict:
    """The experiment's settings as JSON values (without verbose: the console is not part of the experiment)."""
    record = asdict(settings)
    del record["verbose"]
    return {key: str(value) if isinstance(value, Path) else value for key, value in record.items()}


def _check_same_experiment(experiment: Path, settings: Settings) -> None:
    """Resuming must not silently run a different grid: the stored settings must match."""
    record = experiment / "settings.json"
    if not record.exists():
        return
    stored = json.loads(record.read_text())
    current = json.loads(json.dumps(_settings_record(settings)))
    # a setting the record lacks was added to ppo.py after the experiment started
    changed = {key: (stored[key], value) for key, value in current.items() if key in stored and stored[key] != value}
    for key in NOT_THE_GRID:
        changed.pop(key, None)
    if changed:
        differences = ", ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
        raise SystemExit(f"{experiment} holds an experiment with other settings ({differences}); pass another --name")


def _wandb_callback(settings: Settings):
    """wandb logging of every trial; FFM's per-unit values also as histograms."""
    import wandb
    from ray.air.integrations.wandb import WandbLoggerCallback

    class FFMWandbLoggerCallback(WandbLoggerCallback):
        def log_trial_result(self, iteration: int, trial, result: dict) -> None:
            internals = result.get("env_runners", {})
            for name in PER_UNIT:
                values = [value for key, value in internals.items() if key.startswith(f"{PREFIX}/{name}/")]
                if values:
                    result = result | {f"{PREFIX}/{name}_histogram": wandb.Histogram(values)}
            super().log_trial_result(iteration, trial, result)

    return FFMWandbLoggerCallback(
        project=settings.project, group=settings.name, dir=str(settings.storage / settings.name)
    )


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    experiment = settings.storage / settings.name
    logs = "" if settings.verbose else " (logs: ray.log, and stdout / stderr per trial)"
    seeds = f"{settings.samples} seeds"
    if len(settings.seeds) < settings.samples:
        seeds = f"seeds {','.join(map(str, settings.seeds))} of {settings.samples}"
    print(
        f"{len(settings.envs)} envs x {len(settings.models)} models x {seeds}, "
        f"{settings.steps:,} steps each -> {experiment}{logs}",
        file=sys.stderr,
    )
    failed = run(settings).num_errors
    if failed:
        sys.exit(f"{failed} trial(s) failed: see error.txt in their folders under {experiment}")


if __name__ == "__main__":
    main()
