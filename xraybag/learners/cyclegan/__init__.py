"""``cyclegan``: unpaired image-to-image translation as in Zhu et al., "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks" (ICCV 2017).

:mod:`.networks` (ResNet generators, 70x70 PatchGAN discriminators), :mod:`.losses` (least-squares
GAN, cycle and identity losses), :mod:`.pool` (the image pool of 50), :mod:`.images` (reading
the two image sets), :mod:`.trainer` (the training loop, checkpoints and resume) and
:mod:`.synth` (the ``cyclegan`` synthesizer plugin: train, then translate a labelled dataset).
See ``docs/learners.md``, "Built-in synthesizers: cyclegan". Only :mod:`.images` and
:mod:`.synth` import without torch.
"""
