"""Dialogue state tracking over predictions (torch-free) and the ``chat`` command."""
