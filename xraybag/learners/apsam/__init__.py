"""APSAM (the XSeg paper's Adaptive Point SAM) and its parts, each usable and testable alone.

- :mod:`~xraybag.learners.apsam.apg`: the Adaptive Point Generator (numpy; no SAM, no torch);
- :mod:`~xraybag.learners.apsam.eae`: the Energy-Aware Encoder and location initializer (torch).

Nothing is imported here, so importing the package costs nothing and needs neither torch nor
segment-anything.
"""
