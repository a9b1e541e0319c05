"""Size contracts: which input heights and widths a network accepts, declared by the network.

A network that only works on some sizes (stride-2 steps need multiples of 2**k, reflection pads
and normalisation layers need a minimum) says so with a :class:`SizeContract` in its
``size_contract`` attribute. The engine checks a run's training size against every net's
contract before anything is written (so ``crop_size=30`` for a ResNet generator is a clear error
naming the valid sizes, not a tensor-shape error from inside torch after a run directory was
made), and export/inference read a generator's contract (through ``ExportSpec.size_divisor`` and
``min_size``) to pad inputs.

Networks written before contracts existed declare ``size_divisor`` / ``min_size`` attributes;
:func:`size_contract` reads those too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SizeContract", "size_contract"]


@dataclass(frozen=True)
class SizeContract:
    """Input sizes a network accepts: H and W multiples of ``divisor`` and at least ``min_size``.

    ``reason`` says who needs it (for messages), e.g. ``"g_ab (ResnetGenerator): two stride-2
    steps"``; it does not take part in comparisons.
    """

    divisor: int = 1
    min_size: int = 1
    reason: str = dataclasses.field(default="", compare=False)

    def __post_init__(self) -> None:
        for name in ("divisor", "min_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SizeContract.{name} must be a positive integer, got {value!r}")

    @property
    def smallest(self) -> int:
        """The smallest side that satisfies the contract."""
        return math.ceil(self.min_size / self.divisor) * self.divisor

    def accepts(self, side: int) -> bool:
        """Whether one side (H or W) of ``side`` pixels is allowed."""
        return side >= self.min_size and side % self.divisor == 0

    def problem(self, height: int, width: int) -> str | None:
        """Why an ``height x width`` input is refused (None when it is accepted)."""
        bad = [side for side in dict.fromkeys((height, width)) if not self.accepts(side)]
        if not bad:
            return None
        side = bad[0]
        if side < self.min_size:
            return f"{side} px is below the minimum of {self.min_size} px"
        return f"{side} px is not a multiple of {self.divisor}"

    def below(self, side: int) -> int | None:
        """The largest accepted side <= ``side`` (None when there is none)."""
        value = side // self.divisor * self.divisor
        return value if value >= self.min_size else None

    def above(self, side: int) -> int:
        """The smallest accepted side >= ``side``."""
        return max(math.ceil(side / self.divisor) * self.divisor, self.smallest)

    def describe(self) -> str:
        """E.g. ``"multiples of 4, at least 8 px"``, ``"at least 24 px"``, ``"any size"``."""
        parts = []
        if self.divisor > 1:
            parts.append(f"multiples of {self.divisor} px")
        if self.smallest > max(self.divisor, 1):
            parts.append(f"at least {self.smallest} px")
        return ", ".join(parts) if parts else "any size"

    def combine(self, other: SizeContract) -> SizeContract:
        """The sizes both contracts accept (divisors' least common multiple, larger minimum)."""
        reasons = "; ".join(r for r in (self.reason, other.reason) if r)
        return SizeContract(divisor=math.lcm(self.divisor, other.divisor),
                            min_size=max(self.min_size, other.min_size), reason=reasons)


def size_contract(net: Any) -> SizeContract | None:
    """The contract ``net`` declares: its ``size_contract`` attribute, else (networks written
    before contracts) its ``size_divisor`` / ``min_size`` attributes, else None (no rule: any
    size, as far as the network says)."""
    declared = getattr(net, "size_contract", None)
    if isinstance(declared, SizeContract):
        return declared
    divisor, minimum = getattr(net, "size_divisor", None), getattr(net, "min_size", None)
    if divisor is None and minimum is None:
        return None
    return SizeContract(divisor=int(divisor or 1), min_size=int(minimum or 1))
