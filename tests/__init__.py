import sys
from importlib.util import find_spec
from pathlib import Path

# The kernel VM runner is a development tool outside the package (dev/vm, used from this checkout): the tests that drive
# it import it from this checkout where it is not installed.
if find_spec("kcapi_vm") is None:
    sys.path.append(str(Path(__file__).resolve().parent.parent / "dev" / "vm"))
