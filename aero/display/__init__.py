"""Display output: VGA/VBE scan-out to RGB frames (``render``), PNG screenshots (``png``) and
the VGA fonts the Aero BIOS loads (``fonts``).  The pygame window builds on ``render``."""
