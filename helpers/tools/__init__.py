"""Command-line tools: make bench, make gpu-check, make run / publish / rehearse, the headless train entry."""
