"""The quickstarts in the package docstring and in both READMEs run as written."""

import doctest
import re
from pathlib import Path

import pytest

import ffm

ROOT = Path(__file__).resolve().parents[2]


def test_package_docstring_doctest():
    assert doctest.testmod(ffm, raise_on_error=False).failed == 0


@pytest.mark.parametrize("readme", [ROOT / "standalone" / "README.md", ROOT / "README.md"])
def test_readme_python_blocks_run(readme):
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), flags=re.DOTALL)
    assert blocks, f"no python block in {readme}"
    for block in blocks:
        exec(compile(block, str(readme), "exec"), {})
