"""fmn: notifications for a community message bus."""

__version__ = "0.1.0"
