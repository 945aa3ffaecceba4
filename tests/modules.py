"""Which packages a fresh interpreter imports: the check that plotting and results_schema need no RL stack."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RL_STACK = {"ray", "torch", "popgym", "gymnasium", "ffm", "models", "ppo", "benchmark"}


def loaded_packages(*lines: str) -> set[str]:
    """The top-level packages held by a fresh interpreter in the repository after running ``lines``
    (a SystemExit, as from --help, ends them early)."""
    report = "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    body = "\n".join(f"    {line}" for line in lines)
    probe = f"import json, sys\ntry:\n{body}\nexcept SystemExit:\n    pass\n{report}"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))
