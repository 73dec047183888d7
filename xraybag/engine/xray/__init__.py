"""The 2D X-ray stage: scanner geometries (line scan, radiograph), exact path lengths on the meshes,
detection and noise, the pseudo-colour calibration and colours, and the per-object labels."""
