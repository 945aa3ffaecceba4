#!/usr/bin/env bash
# GRU vs FFM as the memory of recurrent SAC/TD3 on occluded PyBullet locomotion (Ant, HalfCheetah, Hopper, Walker2D).
#
#   ./gru_vs_ffm.sh <RANDOM_SEED> <CUDA_DEVICE> <CONFIG_GROUP> [EXTRA...]
#
# Runs every config of CONFIG_GROUP in parallel (one main.py process each) and waits for all of them; each
# run's output goes to LOG_DIR (default <repo>/results/pomdp/logs/). CUDA_DEVICE -1 (or no GPU) runs on the
# CPU; the CPU cores are shared out between the runs unless OMP_NUM_THREADS is set. EXTRA goes to main.py
# unchanged, e.g. `--algo td3` or `--set env_steps=100000`. PYTHON picks the interpreter (default: the repo's
# .venv). Groups: CONFIGS_RNN_P / CONFIGS_FFM_P (GRU / FFM on the four -P tasks), CONFIGS_RNN_V / CONFIGS_FFM_V
# (the -V tasks), CONFIGS_P / CONFIGS_V (both memories: eight runs). TASKS (space-separated, from
# ant cheetah hopper walker pendulum; default the four PyBullet tasks) picks the tasks, e.g.
# TASKS="pendulum hopper" ./gru_vs_ffm.sh 0 -1 CONFIGS_P.
set -euo pipefail
cd "$(dirname "$0")"

KNOWN_TASKS=(ant cheetah hopper walker pendulum)
read -r -a TASKS <<<"${TASKS:-ant cheetah hopper walker}"
GROUP_NAMES=(CONFIGS_RNN_P CONFIGS_FFM_P CONFIGS_RNN_V CONFIGS_FFM_V CONFIGS_P CONFIGS_V)

usage() {
    echo "usage: $0 <RANDOM_SEED> <CUDA_DEVICE> <CONFIG_GROUP> [EXTRA...]" >&2
    echo "  CONFIG_GROUP: one of ${GROUP_NAMES[*]}" >&2
    exit 2
}

# configs <p|v> <memory...>: the group's config files
configs() {
    local kind=$1 memory task
    shift
    for memory in "$@"; do
        for task in "${TASKS[@]}"; do
            echo "configs/pomdp/$task/$kind/$memory.yml"
        done
    done
}

[[ $# -ge 3 ]] || usage
SEED=$1
CUDA=$2
GROUP=$3
shift 3
[[ $SEED =~ ^[0-9]+$ ]] || { echo "RANDOM_SEED: expected a whole number >= 0, got '$SEED'" >&2; usage; }
[[ $CUDA =~ ^-?[0-9]+$ ]] || { echo "CUDA_DEVICE: expected a GPU index or -1 (CPU), got '$CUDA'" >&2; usage; }
[[ ${#TASKS[@]} -gt 0 ]] || { echo "TASKS: expected some of ${KNOWN_TASKS[*]}, got none" >&2; usage; }
for task in "${TASKS[@]}"; do
    [[ " ${KNOWN_TASKS[*]} " == *" $task "* ]] || { echo "TASKS: unknown task '$task'; expected some of ${KNOWN_TASKS[*]}" >&2; usage; }
done

case $GROUP in
    CONFIGS_RNN_P) mapfile -t CONFIGS < <(configs p gru) ;;
    CONFIGS_FFM_P) mapfile -t CONFIGS < <(configs p ffm) ;;
    CONFIGS_RNN_V) mapfile -t CONFIGS < <(configs v gru) ;;
    CONFIGS_FFM_V) mapfile -t CONFIGS < <(configs v ffm) ;;
    CONFIGS_P) mapfile -t CONFIGS < <(configs p gru ffm) ;;
    CONFIGS_V) mapfile -t CONFIGS < <(configs v gru ffm) ;;
    *)
        echo "CONFIG_GROUP: unknown group '$GROUP'; expected one of ${GROUP_NAMES[*]}" >&2
        exit 2
        ;;
esac

if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python
    if [[ -x ../.venv/bin/python ]]; then PYTHON=../.venv/bin/python; fi
fi
if [[ -z ${OMP_NUM_THREADS:-} ]]; then  # each run gets its share of the cores
    threads=$(($(nproc) / ${#CONFIGS[@]}))
    export OMP_NUM_THREADS=$((threads > 0 ? threads : 1))
fi
LOG_DIR=${LOG_DIR:-../results/pomdp/logs}
mkdir -p "$LOG_DIR"

pids=()
for config in "${CONFIGS[@]}"; do
    name=$(echo "${config#configs/pomdp/}" | tr / -)
    log="$LOG_DIR/${name%.yml}-seed$SEED.log"
    echo "$config -> $log"
    "$PYTHON" main.py --cfg "$config" --seed "$SEED" --cuda "$CUDA" "$@" >"$log" 2>&1 &
    pids+=($!)
done

failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "failed: ${CONFIGS[$i]} (see its log)" >&2
        failed=$((failed + 1))
    fi
done
echo "$GROUP seed $SEED: $((${#CONFIGS[@]} - failed)) of ${#CONFIGS[@]} runs finished"
[[ $failed -eq 0 ]]
