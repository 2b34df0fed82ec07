"""The installed package's version, in a module of its own so any module can import it.

(Importing ``xdeepbedmap`` itself from a submodule would make an import cycle
through the package's ``__init__``.)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("xdeepbedmap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
