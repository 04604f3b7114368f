"""Generate docs/openapi.json (OpenAPI 3.1) from the gateway's routes and models, the
document the gateway serves at /openapi.json, so that clients and generated types can
be written without a running gateway.

    uv run python scripts/openapi.py > docs/openapi.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

from waybill_gateway.main import create_app
from waybill_gateway.settings import GatewaySettings


def document() -> dict[str, Any]:
    # The settings the document shows (the remote export prefix) fixed, so that it does
    # not depend on the environment it is generated in.
    settings = GatewaySettings(s3_bucket="waybill", remote_export_prefixes=[])
    return create_app(settings).openapi()


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
