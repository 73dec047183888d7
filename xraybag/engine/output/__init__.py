"""The render pipeline of one bag and what it writes: the dataset (files, COCO records, manifest),
the worker pool and Dask, the memory check, GLB/PNG export of a packed bag and contact sheets."""
