"""The README's settings table stays true: every setting is documented, nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

from copyflow.schemas.settings import setting_env_names

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_documents_exactly_the_settings() -> None:
    documented = set(re.findall(r"^\| `(COPYFLOW_[A-Z_]+)`", README.read_text(), re.MULTILINE))
    assert documented == setting_env_names()
