"""Solids: the triangle meshes of a scene (primitives, mesh files, hollowed containers and their
liquid fill), the scene's solids per object and part in the bag frame, and sheets draped over the
packed contents."""
