"""The ``deploy`` section, checked: how far LCE's converted model may
disagree with Keras before an interpreter option set is refused. Read by
the `deploy` stages (through their slice) and `check`; LCE's acceptance
rule that applies it is :mod:`stages.lib.forms.lce`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stages.lib.common import StudyError
from stages.lib.params import is_number, section

# The `deploy` section of params.yaml: how far a converted model may
# disagree with Keras on the test set under an option set before that set
# is refused (never timed); every set beyond it refuses the conversion.
SECTION = "deploy"
KEYS = ("max_disagreement_pct",)


@dataclass(frozen=True)
class DeploySettings:
    """The largest share of test images, in percent, on which a converted
    model may answer otherwise than its Keras model."""
    max_disagreement_pct: float


def deploy_settings(params: dict[str, Any]) -> DeploySettings:
    """``deploy``, checked: a percentage from 0 to 100."""
    limit = section(params, SECTION, KEYS).get("max_disagreement_pct")
    if not is_number(limit) or not 0 <= limit <= 100:
        raise StudyError(f"{SECTION}.max_disagreement_pct must be a percentage from 0 to 100, got {limit!r}")
    return DeploySettings(float(limit))


check = deploy_settings


def slices(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The slice file each `deploy` stage reads (``deploy.json``): the
    disagreement limit."""
    return {"deploy.json": {SECTION: {"max_disagreement_pct": deploy_settings(params).max_disagreement_pct}}}
