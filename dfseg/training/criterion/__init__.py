"""D-FINE's training criterion and its parts.

    criterion.py     `DFineCriterion` (the loss table) and `build_criterion`
    matcher.py       Hungarian matching and D-FINE's union ("go") matches
    layers.py        which decoder layer is matched and normalised how
    detection.py     VFL / MAL classification, L1 + GIoU box losses
    distribution.py  FGL and DDF on the FDR edge distributions
    masks.py         box-restricted mask BCE + Dice (and mask matching costs)
    inputs.py        validation of what the criterion receives
"""

from dfseg.training.criterion.criterion import DFINE_WEIGHTS, DFineCriterion, build_criterion
from dfseg.training.criterion.inputs import CriterionInputError
from dfseg.training.criterion.matcher import HungarianMatcher, Matches, union_matches

__all__ = [
    "DFINE_WEIGHTS",
    "CriterionInputError",
    "DFineCriterion",
    "HungarianMatcher",
    "Matches",
    "build_criterion",
    "union_matches",
]
