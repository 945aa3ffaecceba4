"""FFM_TORCH_ONLY=1 (the GPU check, scripts/gpu_check.py, on a machine with torch but without ray, popgym,
gymnasium, wandb or pybullet): the test files that need that RL stack are left out of collection. Everywhere
else every file runs; tests/test_gpu_check.py checks that this list is exactly the files that need the stack."""

import os
from pathlib import Path

NEEDS_RL_STACK = frozenset(
    {
        "test_benchmark_ppo.py",
        "test_cluster.py",
        "test_docs.py",
        "test_ffm_models.py",
        "test_learner.py",
        "test_models.py",
        "test_plotting.py",
        "test_pomdp_baselines.py",
        "test_ppo.py",
        "test_results_schema.py",
        "test_training.py",
    }
)


def pytest_ignore_collect(collection_path: Path) -> bool | None:
    if os.environ.get("FFM_TORCH_ONLY") == "1" and collection_path.name in NEEDS_RL_STACK:
        return True
    return None
