"""``python -m models``: every registered model with its parameter count in the paper's POPGym setting."""

import gymnasium as gym

from models import MODELS


def main() -> None:
    observation_space = gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Discrete(4), gym.spaces.Discrete(2)))
    action_space = gym.spaces.Discrete(4)
    print(f"{'model':<24}{'parameters':>12}{'core':>12}  state")
    for name, model in MODELS.items():
        module = model(observation_space=observation_space, action_space=action_space, model_config={})
        total = sum(parameter.numel() for parameter in module.parameters())
        core = sum(parameter.numel() for parameter in module.core.parameters())
        state = ", ".join(
            f"{key} {list(value.shape)} {value.dtype}" for key, value in module.get_initial_state().items()
        )
        print(f"{name:<24}{total:>12,}{core:>12,}  {state or '-'}")


if __name__ == "__main__":
    main()
