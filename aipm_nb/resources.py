"""Files that ship inside the package: the notebook templates and the sample data.

They are found through `importlib.resources`, so a non-editable ``pip install`` has them too. In
the checkout ``aipm_nb/templates`` and ``aipm_nb/sample_data`` are symlinks to ``notebooks/``
and ``data/``; the wheel holds copies (``[tool.setuptools.package-data]``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aipm_nb import config
from aipm_nb.errors import ParameterError

__all__ = ["TEMPLATE_PREFIX", "sample_dir", "sample_path", "template_path", "templates_dir"]

#: ``notebook: template:NAME`` in reports.yml names a template shipped with the package.
TEMPLATE_PREFIX = "template:"


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("aipm_nb") / name))


def templates_dir() -> Path:
    """The folder of the shipped notebook templates."""
    return _package_dir("templates")


def sample_dir() -> Path:
    """The folder ``sample:NAME`` sources read (``aipm-nb data`` writes it)."""
    return _package_dir("sample_data")


def sample_path(name: str) -> Path:
    """The file of sample data set ``name`` (``events``, ``experiment``, ``predictions``).

    Examples:
        >>> sample_path("events").name
        'events.parquet'
    """
    if name not in config.SAMPLE_FILES:
        raise ParameterError(
            f"unknown sample {name!r}; expected one of {sorted(config.SAMPLE_FILES)}"
        )
    return sample_dir() / config.SAMPLE_FILES[name]


def template_path(name: str) -> Path:
    """The shipped template ``name`` (with or without ``.ipynb``).

    Examples:
        >>> template_path("ab_test_evaluation").name
        'ab_test_evaluation.ipynb'
    """
    stem = name.removeprefix(TEMPLATE_PREFIX).removesuffix(".ipynb")
    path = templates_dir() / f"{stem}.ipynb"
    if not path.is_file():
        known = sorted(p.stem for p in templates_dir().glob("*.ipynb"))
        raise ParameterError(f"unknown template {stem!r}; expected one of {known}")
    return path
