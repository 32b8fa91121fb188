"""`interp-af gap`: registered here; implemented by its issue."""

from ._app import app  # noqa: F401
