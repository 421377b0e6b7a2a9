"""One router per resource, all mounted under /api/v1 by fmn.api.app."""
