"""Arrow's compute functions, for the columnar fast paths.

`pyarrow.compute` generates its functions when it is imported, so a type checker sees none of
them: they are used through this untyped name. The module is imported on first use, not when the
code location loads (it costs about 0.2 s of every run's start-up otherwise).
"""

from __future__ import annotations

import importlib
from typing import Any


class _Compute:
    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("pyarrow.compute"), name)


pc: Any = _Compute()
