"""The JSON Schema of the site model, shipped as ``schema/sites.schema.json``."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from siteops.model import HostSites

SCHEMA_ID = "https://siteops.invalid/schema/sites.schema.json"


def json_schema() -> dict[str, Any]:
    """Generate the schema of a ``sites.yml`` from the pydantic models."""
    schema = HostSites.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def render() -> str:
    """The schema as the exact text of the shipped file."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def shipped() -> str:
    """The schema file as shipped in the package."""
    return resources.files("siteops").joinpath("schema/sites.schema.json").read_text("utf-8")
