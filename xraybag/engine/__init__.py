"""The engine, one sub-package per stage of the flow of a bag (DESIGN.md): ``solids`` (meshes and
the scene's solids) -> ``packing`` (poses) -> ``xray`` (2D scanners: trace, detect, colour, labels)
or ``ct`` (voxelise, project, decompose, reconstruct) -> ``output`` (the pipeline of one bag and the
dataset writer)."""
