"""Write FMN 3.4's own OpenAPI document to tests/contract/fmn3-openapi.json, with its provenance.

FMN 3 itself is never part of fmn or its test suite: run this in a throwaway venv, and commit
only the document it writes (data that FastAPI derived from FMN 3's routes and pydantic models)::

    python3 -m venv /tmp/fmn3
    /tmp/fmn3/bin/pip install "fmn[api]==3.4.0" fmn-messages
    /tmp/fmn3/bin/python tests/contract/generate_fmn3_openapi.py

(Debian's libkrb5-dev is needed to build httpx-gssapi's dependencies.) The document's
`info.x-provenance` says which versions produced it, when and how.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import sys
from pathlib import Path

COMMAND = (
    'python3 -m venv /tmp/fmn3 && /tmp/fmn3/bin/pip install "fmn[api]==3.4.0" fmn-messages'
    " && /tmp/fmn3/bin/python tests/contract/generate_fmn3_openapi.py"
)
OUT = Path(__file__).resolve().parent / "fmn3-openapi.json"


def main() -> None:
    version = importlib.metadata.version("fmn")
    if version != "3.4.0":
        sys.exit(f"this needs FMN 3.4.0 installed (found fmn {version}); see the docstring")
    from fmn.api.main import app  # FMN 3's, in the throwaway venv

    document = app.openapi()
    document["info"]["x-provenance"] = {
        "generated_from": "fmn 3.4.0 (PyPI), fmn.api.main:app.openapi()",
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("fmn", "fastapi", "pydantic", "fmn-messages")
        },
        "date": dt.date.today().isoformat(),
        "command": COMMAND,
    }
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
