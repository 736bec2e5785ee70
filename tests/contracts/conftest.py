"""The Python-side contract tests import migrations/, bindings/python/ and scripts/ modules:
those directories are on pytest's `pythonpath` (pyproject.toml), as is tests/ for `support`."""
