"""``tip``: physics threat-image projection (see ``docs/learners.md``, "Built-in synthesizers").

:mod:`.core` traces a threat alone through a bag's scanner views and composites it into the bag's
signals; :mod:`.place` chooses its pose; :mod:`.synth` is the ``tip`` synthesizer plugin that
writes a new dataset. This package does not import torch.
"""
