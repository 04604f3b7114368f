"""waybill: the command line for Waybill's public HTTP API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("waybill-cli")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
