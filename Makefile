# Two commands do everything on a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-ppo gpu-check reproduce clean

setup: $(INSTALLED)

# torch first and pinned: with 2.13.0 in place, nothing else can pull a (CUDA) torch from the index.
$(INSTALLED): requirements.txt constraints.txt standalone/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 needed, got {sys.version}"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt -e ./standalone
	touch $@

# the quick reproduction: RayFFM, GRU and BasicMLP with PPO on two popgym envs (ppo.py --preset demo;
# rerunning resumes), then its results table and learning curves in figures/demo/; it fails unless FFM and
# the GRU beat the memoryless MLP by 0.1 MMER on at least one env (the demo's point: memory matters)
demo: setup
	$(BIN)/python ppo.py --preset demo
	$(BIN)/python -m plotting table curves gaps --source results/demo --out figures/demo --require-gap 0.1

lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python benchmark.py

# PPO's cost per model at the paper's settings (BPTT 1024, batch 65,536) on one core, RayFFM and the GRU on
# RepeatPreviousEasy, against RLlib-free limits (benchmark_ppo.py; docs/efficiency.md); writes throughput_ppo.csv
bench-ppo: setup
	$(BIN)/python benchmark_ppo.py --label paper --models RayFFM,GRU --experiment RepeatPreviousEasy \
		--workers 0 --envs-per-worker 64 --warmup 0 --iterations 1 --epochs-timed 5 --out throughput_ppo.csv

# on a lent GPU machine with torch but nothing of this repository installed (scripts/gpu_check.py): the
# torch-only tests with CUDA, the GPU benchmark, one summary under results/gpu-check/
gpu-check:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,python3) scripts/gpu_check.py

# re-run one committed POPGym trial at the commit results/README.md records for its table, in a temporary git
# worktree, and compare its curve with the committed one (HEAD=1: at this checkout, against the seeds' spread), e.g.
# make reproduce RUN=cpu ENV=RepeatFirstEasy MODEL=RayFFM SEED=0
reproduce: setup
	$(BIN)/python scripts/reproduce.py --run $(RUN) --env $(ENV) --model $(MODEL) --seed $(SEED) $(if $(HEAD),--head)

clean:
	rm -rf $(VENV) .pytest_cache
