"""Browser suite: JupyterLab and Voila driven by headless Chromium (run by `make test-browser`)."""
