"""``python -m models``: every registered model with its parameter count in the paper's POPGym setting."""

from models import MODELS
from models.network import MemoryNetwork

# popgym's RepeatPrevious after PreviousAction: two one-hot cards of 4 and a flag, 4 actions
OBSERVATION_SIZE, ACTIONS = 10, 4


def main() -> None:
    print(f"{'model':<24}{'parameters':>12}{'core':>12}  state")
    for name, spec in MODELS.items():
        network = MemoryNetwork(spec, OBSERVATION_SIZE, ACTIONS)
        total = sum(parameter.numel() for parameter in network.parameters())
        core = sum(parameter.numel() for parameter in network.core.parameters())
        state = ", ".join(f"{key} {list(value.shape)} {value.dtype}" for key, value in network.initial_state().items())
        print(f"{name:<24}{total:>12,}{core:>12,}  {state or '-'}")


if __name__ == "__main__":
    main()
