"""The REST API (FastAPI): FMN 3's paths and JSON under /api/v1, plus fmn's additions.

`create_app(settings)` in fmn/api/app.py builds it; docs/api.md is the contract.
"""
