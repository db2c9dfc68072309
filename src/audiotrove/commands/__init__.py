"""CLI command groups by topic. Each module defines `register(app)`; cli.py calls them all."""
