"""The roles' argument spec of a site record matches the pydantic site model."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from siteops.model import Component, Site, SiteStatus
from siteops.runtime import Runtime
from tests.conftest import REPO

SPEC: dict[str, Any] = yaml.safe_load(
    (REPO / "roles" / "site_model" / "vars" / "main.yml").read_text(encoding="utf-8")
)


def _nested_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    annotation = model.model_fields[field].annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


@pytest.mark.parametrize(
    ("spec_name", "model"),
    [("__site_model_site_spec", Site), ("__site_model_component_spec", Component)],
)
def test_spec_fields_are_the_model_fields(spec_name: str, model: type[BaseModel]) -> None:
    spec = SPEC[spec_name]
    assert set(spec) == set(model.model_fields)
    for field, options in spec.items():
        nested = _nested_model(model, field)
        if nested is not None:
            assert set(options["options"]) == set(nested.model_fields), field
        assert options.get("required", False) == model.model_fields[field].is_required(), field


def test_spec_choices_are_the_model_enums() -> None:
    assert SPEC["__site_model_site_spec"]["status"]["choices"] == [s.value for s in SiteStatus]
    assert SPEC["__site_model_component_spec"]["runtime"]["choices"] == [r.value for r in Runtime]
