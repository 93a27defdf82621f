"""Test-session settings every test and every notebook kernel (nbval) inherits.

Notebooks run in the 'smoke' profile, and checkpoints/outputs go to a throwaway folder so a test
run neither resumes from nor overwrites what `make run` produced.
"""
import os
import tempfile

os.environ.setdefault("FACEGAN_PROFILE", "smoke")
_tmp = tempfile.mkdtemp(prefix="facegan-test-")
os.environ.setdefault("FACEGAN_CHECKPOINTS", os.path.join(_tmp, "checkpoints"))
os.environ.setdefault("FACEGAN_OUTPUTS", os.path.join(_tmp, "outputs"))
os.environ.setdefault("MPLBACKEND", "Agg")
