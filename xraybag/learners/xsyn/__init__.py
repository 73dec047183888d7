"""Xsyn: layout-grounded diffusion inpainting of threats (GLIGEN) with CAR and BOM."""
