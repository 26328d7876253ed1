"""Arrow's compute functions, for the columnar fast paths.

`pyarrow.compute` generates its functions when it is imported, so a type checker sees none of
them: they are used through this untyped name.
"""

from typing import Any

import pyarrow.compute

pc: Any = pyarrow.compute
