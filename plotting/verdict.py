"""The one rule by which every result here is read: two models' score over seeds, compared.

A comparison of model A with model B on one score (higher is better; pass negated values for a time or a
cost) gives one of four words, from the difference of the two means against the seeds' spread, the larger
of the two models' standard deviations over seeds:

- **tied**: the means differ by no more than the spread;
- **won** / **behind**: A's mean is above / below B's by more than twice the spread;
- **inconclusive**: the means differ by more than the spread but not by twice it (three seeds cannot rank
  such a gap), or there is no spread (fewer than two seeds).

A claim that rests on several comparisons (FFM against the GRU on three envs, say) is read by ``claim``:
the one word when every comparison gives it, "inconclusive" when every comparison is tied (nothing was
separated, so the claim is neither supported nor contradicted), and otherwise how many of each word.
The README's claims table, docs/results.md's verdicts and its re-run comparison all use these functions.
"""

import math
from collections import Counter
from collections.abc import Iterable

WON, TIED, INCONCLUSIVE, BEHIND = "won", "tied", "inconclusive", "behind"
WORDS = (WON, TIED, INCONCLUSIVE, BEHIND)  # the order in which claim() counts them


def seeds_spread(std: float, other_std: float) -> float:
    """The seeds' spread of a comparison: the larger of the two models' standard deviations over seeds
    (NaN when either has none)."""
    if math.isnan(std) or math.isnan(other_std):
        return math.nan
    return max(std, other_std)


def verdict(mean: float, std: float, other_mean: float, other_std: float) -> str:
    """Model A (``mean``, ``std`` over seeds) against model B (``other_mean``, ``other_std``): "won", "tied",
    "behind" or "inconclusive", by the rule of this module's docstring (higher is better)."""
    spread = seeds_spread(std, other_std)
    difference = mean - other_mean
    if math.isnan(spread) or math.isnan(difference):
        return INCONCLUSIVE
    if abs(difference) <= spread:
        return TIED
    if abs(difference) > 2 * spread:
        return WON if difference > 0 else BEHIND
    return INCONCLUSIVE


def claim(verdicts: Iterable[str]) -> str:
    """A claim's verdict from its comparisons' verdicts: the one word when all agree ("won", "behind",
    "inconclusive"), "inconclusive" when all are "tied", otherwise the count of each word in WORDS' order,
    e.g. "tied on 2, behind on 1"."""
    counts = Counter(verdicts)
    unknown = set(counts) - set(WORDS)
    if unknown or not counts:
        raise ValueError(f"expected verdicts among {WORDS}, got {sorted(counts)}")
    if len(counts) == 1:
        (word,) = counts
        return INCONCLUSIVE if word == TIED else word
    return counted(counts.elements())


def counted(verdicts: Iterable[str]) -> str:
    """How many comparisons gave each word, in WORDS' order: "tied on 4, inconclusive on 1"."""
    counts = Counter(verdicts)
    return ", ".join(f"{word} on {counts[word]}" for word in WORDS if counts[word])
