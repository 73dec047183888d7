"""APSAM (the XSeg paper's Adaptive Point SAM) and its parts, each usable and testable alone.

- :mod:`~xraybag.learners.apsam.apg`: the Adaptive Point Generator (numpy; no SAM, no torch);
- :mod:`~xraybag.learners.apsam.eae`: the Energy-Aware Encoder and location initializer (torch);
- :mod:`~xraybag.learners.apsam.sam`: SAM from segment-anything's classes, adapters, presets,
  checkpoint loading, the mask decoder with initial tokens (torch, segment-anything);
- :mod:`~xraybag.learners.apsam.net`: the trained network and its losses;
  :mod:`~xraybag.learners.apsam.samples`: training samples and evaluation clicks;
- :mod:`~xraybag.learners.apsam.learner`: the ``sam_finetune`` and ``apsam`` segmenters (importable
  without torch; they need it to train and predict).

Nothing is imported here, so importing the package costs nothing and needs neither torch nor
segment-anything.
"""
