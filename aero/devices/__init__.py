"""PC devices: one module per chip.  See ``base.py`` for what every device provides."""
